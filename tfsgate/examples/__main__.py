"""``python -m tfsgate.examples DIR [--version N] [--kind KIND]``: write one example SavedModel
version into the base path DIR (nothing when it is already there)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tfsgate.examples import WRITERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_path", help="model base path; the version directory goes inside it")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--kind", choices=sorted(WRITERS), default="half_plus_two")
    args = parser.parse_args()
    target = Path(args.base_path) / str(args.version)
    if (target / "saved_model.pb").exists():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    WRITERS[args.kind](target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
