"""TFRecord framing read back by TensorFlow's own reader."""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

import pytest

from gateway.tfrecord import frame, masked_crc32c, read_records


def test_masked_crc_matches_tensorflow_known_value() -> None:
    # crc32c("") == 0; TF's Mask(0) = 0xa282ead8.
    assert masked_crc32c(b"") == 0xA282EAD8


def test_tensorflow_reads_what_we_write(tf: ModuleType, tmp_path: Path) -> None:
    records = [b"", b"a", b"x" * 100_000, bytes(range(256))]
    path = tmp_path / "r.tfrecord"
    path.write_bytes(b"".join(frame(r) for r in records))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == records
    assert list(read_records(io.BytesIO(path.read_bytes()))) == records


def test_corruption_is_detected() -> None:
    data = bytearray(frame(b"hello"))
    data[14] ^= 1
    with pytest.raises(ValueError, match="corrupt"):
        list(read_records(io.BytesIO(bytes(data))))
    with pytest.raises(ValueError, match="truncated"):
        list(read_records(io.BytesIO(frame(b"hello")[:-2])))
