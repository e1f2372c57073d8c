"""The Triton HTTP client's encoding helpers (pure unit tests)."""

from __future__ import annotations

import numpy as np
from tritonclient.utils import np_to_triton_dtype

from gateway.triton_http import triton_datatype


def test_datatypes_are_tritonclients_names() -> None:
    """The looked-up datatype names are what tritonclient's np_to_triton_dtype answers, for the
    numeric types and the others it falls back to (object and bytes: BYTES; byte-swapped: none)."""
    kinds = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32]
    kinds += [np.uint64, np.float16, np.float32, np.float64, np.object_, np.bytes_]
    for kind in kinds:
        assert triton_datatype(np.dtype(kind)) == np_to_triton_dtype(np.dtype(kind))
    assert triton_datatype(np.dtype(">f4")) == np_to_triton_dtype(np.dtype(">f4"))
