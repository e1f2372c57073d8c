"""``--custom_op_libraries`` in the TensorFlow worker process (no Triton): a SavedModel whose graph
needs TF Text's ``TFText>WhitespaceTokenizeWithOffsetsV2`` fails to load, naming the op, until the
library is loaded, as a package (``tensorflow_text``) or as the ``.so`` that registers the op."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.models import write_model
from tfsgate.runtime import tf_worker
from tfsgate.runtime.tf_worker import WorkerClient, WorkerError

pytestmark = pytest.mark.process  # starts TensorFlow worker processes

OP = "TFText>WhitespaceTokenizeWithOffsetsV2"
# Found without importing the package (TensorFlow stays out of pytest).
_TEXT = importlib.util.find_spec("tensorflow_text")
assert _TEXT is not None and _TEXT.submodule_search_locations
WHITESPACE_SO = Path(_TEXT.submodule_search_locations[0]) / "python/ops/_whitespace_tokenizer_v2.so"
MakeClient = Callable[[list[str]], WorkerClient]


@pytest.fixture(scope="module")
def tokens_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model("write_text_tokens", tmp_path_factory.mktemp("tokens") / "1")


@pytest.fixture
def worker(tokens_model: Path) -> Iterator[MakeClient]:
    """A client factory whose clients share one fresh worker (one owner process)."""
    owner = subprocess.Popen(["sleep", "300"])
    directory = tempfile.mkdtemp(prefix="tfw-ops-")
    clients: list[WorkerClient] = []

    def make(libraries: list[str]) -> WorkerClient:
        client = WorkerClient(
            saved_model=str(tokens_model),
            signature="serving_default",
            worker_file=str(Path(tf_worker.__file__)),
            fingerprint="|".join(libraries),
            owner_pid=owner.pid,
            python=sys.executable,
            directory=directory,
            idle_seconds=1.0,
            custom_op_libraries=libraries,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    owner.kill()
    owner.wait()


def count_tokens(client: WorkerClient) -> list[int]:
    texts = np.array([b"one two three", b"four", b""], dtype=object)
    return client.run({"text": texts})["tokens"].tolist()


def test_without_the_library_the_load_names_the_op(worker: MakeClient) -> None:
    client = worker([])
    with pytest.raises(WorkerError) as failed:
        client.connect()
    assert f"Op type not registered '{OP}'" in failed.value.message


@pytest.mark.parametrize("library", ["tensorflow_text", str(WHITESPACE_SO)], ids=["package", "so"])
def test_with_the_library_the_model_serves(worker: MakeClient, library: str) -> None:
    client = worker([library])
    client.connect()
    assert count_tokens(client) == [3, 1, 0]


def test_a_library_that_does_not_load_fails_the_version_with_its_name(
    worker: MakeClient,
) -> None:
    client = worker(["/nonexistent/_ops.so"])
    with pytest.raises(WorkerError) as failed:
        client.connect()
    assert "cannot load custom op library /nonexistent/_ops.so" in failed.value.message
