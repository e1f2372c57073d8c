"""The naive baseline: FastAPI calling a SavedModel's TensorFlow signature in-process.

What many teams write before they reach for a model server: one process, one uvicorn worker,
TF Serving's REST ``:predict`` row format, a plain ``def`` endpoint (FastAPI runs it in its thread
pool) calling ``serving_default`` eagerly per request, no batching. Run:
``python -m bench.naive_server --model_name mlp --model_path models/mlp/1 --port 8601``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_app(model_name: str, model_path: str) -> Any:
    import numpy as np
    import tensorflow as tf
    from fastapi import FastAPI, HTTPException

    loaded = tf.saved_model.load(model_path)
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise SystemExit("the naive server takes one-input signatures only")
    ((input_name, spec),) = inputs.items()
    app = FastAPI()

    @app.post(f"/v1/models/{model_name}:predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        if "instances" not in body:
            raise HTTPException(400, "missing instances")
        tensor = tf.constant(np.asarray(body["instances"], dtype=spec.dtype.as_numpy_dtype))
        outputs = signature(**{input_name: tensor})
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).numpy().tolist()}
        rows = {k: v.numpy().tolist() for k, v in outputs.items()}
        count = len(next(iter(rows.values())))
        return {"predictions": [{k: v[i] for k, v in rows.items()} for i in range(count)]}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", required=True, help="a version directory")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(args.model_name, args.model_path)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
