"""--model_config_file parsing and validation over real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from control_plane.sources.base_path import discover_versions
from control_plane.sources.model_config import (
    ModelConfigError,
    ModelSetConfig,
    ModelSpecConfig,
    config_from_proto,
    load_model_config,
    parse_model_config,
    single_model_config,
)
from tfsgate.core.protos import model_server_config_pb2
from tfsgate.core.status import Code
from tfsgate.core.version_policy import VersionPolicy

TESTDATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "testdata" / "tfserving"
needs_testdata = pytest.mark.skipif(
    not TESTDATA.is_dir(), reason=f"TF Serving test data not found at {TESTDATA}"
)

TEXT_CONFIG = """
model_config_list {
  config {
    name: "latest_default"
    base_path: "/models/a"
    model_platform: "tensorflow"
  }
  config {
    name: "latest_two"
    base_path: "/models/b/"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
  }
  config {
    name: "all"
    base_path: "/models/c"
    model_platform: "tensorflow"
    model_version_policy { all {} }
  }
  config {
    name: "specific"
    base_path: "/models/d"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""

JSON_CONFIG = {
    "model_config_list": {
        "config": [
            {"name": "latest_default", "base_path": "/models/a", "model_platform": "tensorflow"},
            {
                "name": "latest_two",
                "base_path": "/models/b/",
                "model_platform": "tensorflow",
                "model_version_policy": {"latest": {"num_versions": 2}},
            },
            {
                "name": "all",
                "base_path": "/models/c",
                "model_platform": "tensorflow",
                "model_version_policy": {"all": {}},
            },
            {
                "name": "specific",
                "basePath": "/models/d",  # protobuf JSON accepts camelCase names too
                "modelPlatform": "tensorflow",
                "model_version_policy": {"specific": {"versions": ["1", 2]}},
                "version_labels": {"stable": "1", "canary": 2},
            },
        ]
    }
}

EXPECTED = ModelSetConfig(
    models=(
        ModelSpecConfig(
            "latest_default", Path("/models/a"), "tensorflow", VersionPolicy.latest(1), {}
        ),
        ModelSpecConfig("latest_two", Path("/models/b"), "tensorflow", VersionPolicy.latest(2), {}),
        ModelSpecConfig("all", Path("/models/c"), "tensorflow", VersionPolicy.all(), {}),
        ModelSpecConfig(
            "specific",
            Path("/models/d"),
            "tensorflow",
            VersionPolicy.specific({1, 2}),
            {"stable": 1, "canary": 2},
        ),
    )
)


@pytest.mark.parametrize(
    ("filename", "content"),
    [("models.config", TEXT_CONFIG), ("models.json", json.dumps(JSON_CONFIG, indent=2))],
)
def test_load_text_and_json(tmp_path: Path, filename: str, content: str) -> None:
    path = tmp_path / filename
    path.write_text(content)
    config = load_model_config(path)
    assert config == EXPECTED
    assert config.names == ("latest_default", "latest_two", "all", "specific")
    assert config.by_name()["specific"].labels == {"stable": 1, "canary": 2}


def _model(body: str) -> str:
    return "model_config_list { config { " + body + " } }"


OK_MODEL = 'name: "m" base_path: "/models/m" model_platform: "tensorflow"'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("improperly formatted file", "Invalid protobuf file"),
        ("model_config_list { config { name: 'm' ", "Invalid protobuf file"),
        ('{"model_config_list": {"confg": []}}', "JSON"),
        ('{"model_config_list": ', "JSON"),
        (
            "model_config_list { config { " + OK_MODEL + " } config { " + OK_MODEL + " } }",
            "Illegal to list model m multiple times in config list",
        ),
        (_model('base_path: "/models/m" model_platform: "tensorflow"'), "empty name"),
        (_model('name: "m" model_platform: "tensorflow"'), "empty base_path"),
        (
            _model('name: "m" base_path: "models/m" model_platform: "tensorflow"'),
            "Expected model m to have an absolute path or URI; got base_path()=models/m",
        ),
        (
            _model('name: "m" base_path: "gs://bucket/m" model_platform: "tensorflow"'),
            "local paths only",
        ),
        (
            _model('name: "m" base_path: "/models/m"'),
            "Illegal setting neither ModelServerConfig::model_type",
        ),
        (
            _model('name: "m" base_path: "/models/m" model_platform: "onnx"'),
            "Model m requests unsupported platform onnx",
        ),
        (
            _model('name: "m" base_path: "/models/m" model_type: OTHER'),
            "model_type choice 2 not supported",
        ),
        (
            _model('name: "m" base_path: "/models/m" model_type: TENSORFLOW model_platform: "t"'),
            "Illegal setting both ModelServerConfig::model_type",
        ),
        (
            'custom_model_config { type_url: "x/y" }',
            "ModelServer does not yet support custom model config.",
        ),
    ],
)
def test_invalid_configs(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "models.config"
    path.write_text(content)
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    text = str(caught.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_missing_file(tmp_path: Path) -> None:
    """TF's IOError status: NOT_FOUND "<path>; No such file or directory"."""
    path = tmp_path / "absent.config"
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    assert (caught.value.code, str(caught.value)) == (
        Code.NOT_FOUND,
        f"{path}; No such file or directory",
    )


def test_text_parse_error_carries_protobufs_line(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text("model_config_list {\n  config { nme: 'm' }\n}\n")
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    assert str(caught.value) == f"Invalid protobuf file: '{path}'"
    assert caught.value.parse_error == (
        "Error parsing text-format tensorflow.serving.ModelServerConfig: 2:12: Message type"
        ' "tensorflow.serving.ModelConfig" has no field named "nme".'
    )


def test_deprecated_model_type_tensorflow_is_accepted() -> None:
    config = parse_model_config(_model('name: "m" base_path: "/models/m" model_type: TENSORFLOW'))
    assert config.models[0].platform == "tensorflow"


@pytest.mark.parametrize(
    ("base_path", "root_dir", "expected"),
    [
        ("/models/m", None, "/models/m"),
        ("/models/./x/../m/", None, "/models/m"),
        ("file:///models/m", None, "/models/m"),
        ("m", "/srv/models", "/srv/models/m"),
        ("sub/../m", "/srv/models", "/srv/models/m"),
        ("/abs/m", "/srv/models", "/abs/m"),  # absolute paths are left alone
    ],
)
def test_base_path_resolution(base_path: str, root_dir: str | None, expected: str) -> None:
    text = _model(f'name: "m" base_path: "{base_path}" model_platform: "tensorflow"')
    config = parse_model_config(text, root_dir=root_dir)
    assert config.models[0].base_path == Path(expected)


def test_relative_root_dir_is_rejected() -> None:
    with pytest.raises(ModelConfigError, match="model_config_list_root_dir=rel"):
        parse_model_config(_model(OK_MODEL), root_dir="rel")


@pytest.mark.parametrize("content", ["", "  \n# only a comment\n", "{}"])
def test_empty_config_is_unspecified(content: str) -> None:
    assert parse_model_config(content) == ModelSetConfig(models=(), specified=False)


def test_empty_model_config_list_is_specified_and_empty() -> None:
    assert parse_model_config("model_config_list {}") == ModelSetConfig(models=(), specified=True)


def test_variables_are_not_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/expanded")
    text = _model('name: "m" base_path: "/x/${MODEL_DIR}" model_platform: "tensorflow"')
    assert parse_model_config(text).models[0].base_path == Path("/x/${MODEL_DIR}")


def test_single_model_config() -> None:
    config = single_model_config("default", "/models/default/")
    assert config == ModelSetConfig(models=(ModelSpecConfig("default", Path("/models/default")),))


def test_single_model_config_rejects_relative_path() -> None:
    with pytest.raises(ModelConfigError, match="absolute path or URI"):
        single_model_config("default", "models/default")


def test_config_from_proto_for_reload_requests() -> None:
    proto = model_server_config_pb2.ModelServerConfig()
    model = proto.model_config_list.config.add(name="m", base_path="/m")
    model.model_platform = "tensorflow"
    model.version_labels["stable"] = 3
    assert config_from_proto(proto).models[0].labels == {"stable": 3}


@needs_testdata
def test_tf_serving_good_model_config(tmp_path: Path) -> None:
    """Substitute placeholders as TF Serving's own test does, then parse and discover."""
    template = (TESTDATA / "good_model_config.txt").read_text()
    two = (TESTDATA / "saved_model_half_plus_two_cpu").resolve()
    three = (TESTDATA / "saved_model_half_plus_three").resolve()
    text = template.replace("${TEST_HALF_PLUS_TWO_DIR}", str(two)).replace(
        "${TEST_HALF_PLUS_THREE_DIR}", str(three)
    )
    path = tmp_path / "good_model_config.txt"
    path.write_text(text)

    config = load_model_config(path)

    assert config.names == ("half_plus_two", "half_plus_three")
    assert all(model.policy == VersionPolicy.latest(1) for model in config.models)
    assert set(discover_versions(config.by_name()["half_plus_three"].base_path)) == {123}


@needs_testdata
def test_tf_serving_good_model_config_template_is_not_expanded() -> None:
    """Unsubstituted, the placeholders are relative paths, which TF Serving rejects too."""
    expected = re.escape("got base_path()=${TEST_HALF_PLUS_TWO_DIR}")
    with pytest.raises(ModelConfigError, match=expected):
        load_model_config(TESTDATA / "good_model_config.txt")


@needs_testdata
def test_tf_serving_bad_model_config() -> None:
    with pytest.raises(ModelConfigError, match="Invalid protobuf file.*bad_model_config.txt"):
        load_model_config(TESTDATA / "bad_model_config.txt")
