"""A large REST body is let go once decoded, not held through Triton's call and the answer
(two 5 MB bodies in flight were most of `tfsgate serve`'s peak RSS in bench/'s payload runs)."""

from __future__ import annotations

import asyncio
import tracemalloc
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson

from gateway.rest import RestApp, RestHandlers, RestOptions
from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec

SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": spec("x", "DT_FLOAT", (-1, -1))},
    {"y": spec("y", "DT_FLOAT", (-1, -1))},
)


class _Plane:
    """The data plane's predict as RestHandlers calls it: decode by the signature, then the
    traced memory is read while "Triton" answers."""

    def __init__(self) -> None:
        self.traced_during_call = 0

    async def predict(self, ref: Any, inputs: Any, request_id: str = "") -> Any:
        tensors = inputs(SIGNATURE)
        await asyncio.sleep(0)  # the upstream call
        self.traced_during_call = tracemalloc.get_traced_memory()[0]
        return SimpleNamespace(outputs={"y": tensors["x"] * 2}, spec=SimpleNamespace(version=1))


async def test_a_large_body_is_let_go_once_decoded() -> None:
    rows = np.random.default_rng(0).random((1, 1 << 18), np.float32)
    plane = _Plane()
    app = RestApp(RestHandlers(plane, None), RestOptions(metrics_path=None))  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        body = orjson.dumps({"instances": rows.tolist()})
        size = len(body)
        with_body = tracemalloc.get_traced_memory()[0]
        answering = app("POST", b"/v1/models/scale:predict", [], body)
        del body  # as the HTTP server hands it over
        status, _, answer = await answering
    finally:
        tracemalloc.stop()
    assert status == 200
    np.testing.assert_allclose(orjson.loads(answer)["predictions"], rows * 2, rtol=1e-6)
    # Held meanwhile: the float32 tensor (1 MB), not the 5 MB body nor its 2 MB of doubles.
    assert size > 4 << 20
    assert plane.traced_during_call < with_body - size + (2 << 20)
