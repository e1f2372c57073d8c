"""Start-up work begun before the server's own modules are imported: the export child.

On a fresh home every version is converted before it serves (``control_plane/converter``), and
the export child's TensorFlow and tf2onnx imports (3-5 s) are most of that cold start. Started
here, before ``tfsgate serve`` imports its server (1.7 s) and starts Triton, the two run on the
machine's cores side by side. A restart finds its models converted and starts no child.
"""

from __future__ import annotations

from pathlib import Path

from control_plane.converter.exporter import TENSORFLOW, Exporter
from tfsgate.settings import ServeSettings


def _has_models(repository: Path) -> bool:
    try:
        return any(p.is_dir() and not p.name.startswith(".") for p in repository.iterdir())
    except OSError:  # not made yet: a fresh home
        return False


def started_exporter(settings: ServeSettings) -> Exporter | None:
    """The export child, already starting, when this start-up will convert models; else None
    (nothing to serve yet, every model forced to TensorFlow, TFLite preferred, or a repository
    that already holds converted models). Unused, it leaves when idle like any export child."""
    if not (settings.model_base_path or settings.model_config_file):
        return None
    if settings.runner == TENSORFLOW or settings.prefer_tflite_model:
        return None
    if _has_models(settings.repository_path):
        return None
    exporter = Exporter()
    exporter.start()
    return exporter
