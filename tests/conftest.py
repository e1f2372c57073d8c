"""Session fixtures: SavedModels written by the factory, then real ``tfsgate serve`` processes.

Layers: model directories -> server processes -> clients. Servers are real subprocesses started the
way a user starts them (``tfsgate serve`` with TF Serving's flags), each with its own embedded
tritonserver, home directory and free ports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.engine import Engine

from tests.support.models import cached_model
from tests.support.postgres import connect_admin, create_database, drop_databases
from tests.support.servers import ServerProcess, start_server

SHARED_TFSERVING = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "tfserving"


@pytest.fixture(scope="session")
def model_cache(pytestconfig: pytest.Config) -> Path | None:
    """Where written SavedModels are kept between runs (pytest's cache), if caching is on."""
    cache = getattr(pytestconfig, "cache", None)
    return None if cache is None else Path(cache.mkdir("saved_models"))


@pytest.fixture(scope="session")
def sqlite_catalog_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite catalog migrated to head once; tests copy it (``tests/support/catalog.py``)
    instead of running every migration again."""
    from control_plane.catalog import migrate

    path = tmp_path_factory.mktemp("catalog-template") / "catalog.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


# What the shared fixtures start, as markers: a test using one is marked here, so none can
# forget a marker ``make test-fast`` leaves out. (Modules' own server fixtures mark their module.)
FIXTURE_MARKERS = {
    "tf": "tensorflow",
    "saved_models": "tensorflow",
    "server": "triton",
    "tf2_server": "triton",
    "tfserving_server": "triton",
}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in FIXTURE_MARKERS:
                item.add_marker(FIXTURE_MARKERS[fixture])


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | None]:
    """An autocommit engine on PostgreSQL's ``test`` database (the server is started when it is
    installed but down), or None without one: tests that run on SQLite then use only that."""
    engine = connect_admin()
    yield engine
    if engine is not None:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_admin_engine(postgres_admin: Engine | None) -> Engine:
    """As ``postgres_admin``, for ``postgres``-marked tests: they skip without a server."""
    if postgres_admin is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable and could not be started")
    return postgres_admin


@pytest.fixture(scope="session")
def make_pg_database(pg_admin_engine: Engine) -> Iterator[Callable[[], str]]:
    """Makes empty, uniquely named databases on demand; drops them all at session end."""
    created: list[str] = []

    def make() -> str:
        created.append(create_database(pg_admin_engine))
        return created[-1]

    yield make
    drop_databases(pg_admin_engine, created)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def half_plus_two(model_root: Path, model_cache: Path | None) -> Path:
    """Base path with version 123 (the directory named ``00000123``, as TF Serving's test data)."""
    base = model_root / "half_plus_two"
    cached_model("write_half_plus_two", base / "00000123", model_cache)
    return base


@pytest.fixture(scope="session")
def server(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("serve-home")
    with start_server(
        home, ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    ) as process:
        yield process


@pytest.fixture(scope="session")
def multi_io(model_root: Path, model_cache: Path | None) -> Path:
    """A TF2 SavedModel: float inputs a and b, string input tag; outputs sum and tag_length."""
    base = model_root / "multi_io"
    cached_model("write_keras_multi_io", base / "1", model_cache)
    return base


@pytest.fixture(scope="session")
def unbatched(model_root: Path, model_cache: Path | None) -> Path:
    """A TF2 SavedModel whose signatures have no batch dimension (one takes a scalar)."""
    base = model_root / "unbatched"
    cached_model("write_unbatched", base / "1", model_cache)
    return base


@pytest.fixture(scope="session")
def tf2_server(
    multi_io: Path, unbatched: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One ``tfsgate serve`` with a config file: ``multi_io`` and ``unbatched``."""
    home = tmp_path_factory.mktemp("serve-tf2-home")
    config = home / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "multi_io" base_path: "{multi_io}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "unbatched" base_path: "{unbatched}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    with start_server(home, [f"--model_config_file={config}"], model="multi_io") as process:
        yield process


@pytest.fixture(scope="session")
def shared_testdata() -> Path:
    if not SHARED_TFSERVING.is_dir():
        pytest.skip(f"TF Serving's test models are not at {SHARED_TFSERVING} (only CI has them)")
    return SHARED_TFSERVING


TFSERVING_CONFIG = """
model_config_list {{
  config {{ name: "default" base_path: "{data}/saved_model_half_plus_two_cpu" model_platform: "tensorflow" }}
  config {{
    name: "saved_model_half_plus_two_2_versions"
    base_path: "{data}/saved_model_half_plus_two_2_versions"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 123 }}
    version_labels {{ key: "canary" value: 124 }}
  }}
}}
"""


@pytest.fixture(scope="session")
def tfserving_server(
    shared_testdata: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``tfsgate serve`` over TF Serving's own test models: ``saved_model_half_plus_two_cpu`` as
    ``default`` (as in TF Serving's metadata reference) and the two-version model with labels."""
    home = tmp_path_factory.mktemp("serve-tfs-home")
    config = home / "models.config"
    config.write_text(TFSERVING_CONFIG.format(data=shared_testdata))
    with start_server(home, [f"--model_config_file={config}"], model="default") as process:
        yield process


@pytest.fixture(scope="session")
def tf() -> ModuleType:
    """The real TensorFlow (``tfsgate.core.protos`` leaves no stand-in behind), for cross-checks
    of our tables; never used by the code under test."""
    import tensorflow

    return tensorflow


@pytest.fixture(autouse=True, scope="session")
def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
