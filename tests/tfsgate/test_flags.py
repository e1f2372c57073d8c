"""Every ``tensorflow_model_server`` flag, parsed as TF parses flags, with TF Serving's defaults;
the generated docs table; start-up checks with TF Serving's texts and exit status."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import pids_mentioning
from tfsgate import flagdoc
from tfsgate.cli import main, serve_parser, settings_from_args
from tfsgate.core import protos
from tfsgate.flags import Treatment, meta
from tfsgate.settings import ServeSettings
from tfsgate.startup import report_no_effect, tf_session_config

# tensorflow_serving/model_servers/main.cc's flag_list with Server::Options' defaults (server.h).
# None: a default that depends on the machine (4 x CPUs, CPUs) or one tfsgate sets on purpose.
TF_SERVING_FLAGS: dict[str, object] = {
    "port": 8500,
    "grpc_socket_path": "",
    "rest_api_port": None,  # TF Serving 0; tfsgate 8501, as TF Serving's Docker image passes
    "rest_api_num_threads": None,
    "rest_api_timeout_in_ms": 30000,
    "rest_api_enable_cors_support": False,
    "enable_batching": False,
    "allow_version_labels_for_unavailable_models": False,
    "batching_parameters_file": "",
    "enable_per_model_batching_parameters": False,
    "model_config_file": "",
    "model_config_file_poll_wait_seconds": 0,
    "model_name": "default",
    "model_base_path": "",
    "num_load_threads": 0,
    "num_unload_threads": 0,
    "max_num_load_retries": 5,
    "load_retry_interval_micros": 60_000_000,
    "file_system_poll_wait_seconds": 1,
    "flush_filesystem_caches": True,
    "tensorflow_session_parallelism": 0,
    "tensorflow_session_config_file": "",
    "tensorflow_intra_op_parallelism": 0,
    "tensorflow_inter_op_parallelism": 0,
    "use_alts_credentials": False,
    "ssl_config_file": "",
    "platform_config_file": "",
    "per_process_gpu_memory_fraction": 0.0,
    "saved_model_tags": "serve",
    "grpc_channel_arguments": "",
    "grpc_max_threads": None,
    "enable_model_warmup": True,
    "num_request_iterations_for_warmup": 0,
    "version": False,
    "monitoring_config_file": "",
    "remove_unused_fields_from_bundle_metagraph": True,
    "prefer_tflite_model": False,
    "num_tflite_pools": None,
    "num_tflite_interpreters_per_pool": 1,
    "enable_signature_method_name_check": False,
    "xla_cpu_compilation_enabled": False,
    "xla_gpu_compilation_enabled": False,
    "enable_profiler": True,
    "thread_pool_factory_config_file": "",
    "mixed_precision": "",
    "skip_initialize_tpu": False,
    "enable_grpc_healthcheck_service": False,
    "enable_serialization_as_tensor_content": False,
}
FIELDS = ServeSettings.model_fields


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("TFSGATE_") or name in ("MODEL_NAME", "MODEL_BASE_PATH"):
            monkeypatch.delenv(name)


def test_every_tf_serving_flag_is_a_setting_with_its_default() -> None:
    tf_fields = {name for name, field in FIELDS.items() if meta(field).treatment != Treatment.OWN}
    assert tf_fields == set(TF_SERVING_FLAGS)
    for name, default in TF_SERVING_FLAGS.items():
        if default is None:
            assert meta(FIELDS[name]).tf_default, f"{name}: say what TF Serving's default is"
        else:
            assert FIELDS[name].default == default, name
            assert type(FIELDS[name].default) is type(default), name


def test_every_flag_says_what_tfsgate_does_with_it() -> None:
    for name, field in FIELDS.items():
        assert len(meta(field).effect) > 10, name


def test_docs_table_is_generated_from_the_settings() -> None:
    assert flagdoc.DOC_PATH.read_text() == flagdoc.render(), (
        "docs/flags.md is stale: run python -m tfsgate.flagdoc"
    )
    for name in FIELDS:
        assert f"| `--{name}` |" in flagdoc.DOC_PATH.read_text()


def parse(*argv: str) -> ServeSettings:
    return settings_from_args(serve_parser().parse_args(list(argv)))


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["--enable_batching"], True),
        (["--enable_batching=true"], True),
        (["--enable_batching=TRUE"], True),
        (["--enable_batching=1"], True),
        (["--enable_batching=false"], False),
        (["--enable_batching=0"], False),
        ([], False),
    ],
)
def test_bool_flags_as_tf_parses_them(argv: list[str], value: bool) -> None:
    assert parse(*argv).enable_batching is value


def test_values_of_every_kind() -> None:
    settings = parse(
        "--port=9000",
        "--load_retry_interval_micros=-1",
        "--per_process_gpu_memory_fraction=0.5",
        "--saved_model_tags=serve,gpu",
        "--grpc_channel_arguments=grpc.so_reuseaddr=1,grpc.max_connection_age_ms=2000",
        "--model_name=m",
    )
    assert settings.port == 9000
    assert settings.load_retry_interval_micros == -1
    assert settings.per_process_gpu_memory_fraction == 0.5
    assert settings.saved_model_tags == "serve,gpu"
    assert settings.grpc_channel_arguments == "grpc.so_reuseaddr=1,grpc.max_connection_age_ms=2000"
    assert settings.model_fields_set == {
        "port",
        "load_retry_interval_micros",
        "per_process_gpu_memory_fraction",
        "saved_model_tags",
        "grpc_channel_arguments",
        "model_name",
    }


def test_repeated_triton_url_is_comma_joined() -> None:
    assert parse("--triton_url=a:1", "--triton_url=b:2").triton_url == "a:1,b:2"
    assert parse("--port=1", "--port=2").port == 2  # other flags: the last one wins


def test_older_tfsgate_name_still_works() -> None:
    assert parse("--grpc_tensor_content_answers").enable_serialization_as_tensor_content


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port=85x0"], "Couldn't interpret value 85x0 for flag port."),
        (["--enable_batching=yes"], "Couldn't interpret value yes for flag enable_batching."),
        (["--no_such_flag=1"], "unknown argument: --no_such_flag=1"),
        (["--model_nam=x"], "unknown argument: --model_nam=x"),  # no prefix matching
        (
            ["--gateway_workers=0"],
            "Invalid value 0 for flag gateway_workers: Input should be greater than or equal to 1.",
        ),
        (
            ["--rest_large_bodies=-2"],
            "Invalid value -2 for flag rest_large_bodies: Input should be greater than or equal"
            " to 1.",
        ),
    ],
)
def test_bad_flags_exit_255(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", *argv])
    assert caught.value.code == 255
    assert message in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TensorFlow ModelServer: tfsgate-")
    assert "TensorFlow Library: " in out


def test_no_effect_flags_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    settings = parse(
        "--xla_cpu_compilation_enabled", "--num_tflite_interpreters_per_pool=2", "--port=9000"
    )
    with caplog.at_level(logging.WARNING, logger="tfsgate"):
        report_no_effect(settings)
    lines = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].endswith(": --num_tflite_interpreters_per_pool, --xla_cpu_compilation_enabled")


def _serve(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tfsgate.cli", "serve", f"--home={tmp_path}", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (
            ["--port=0", "--model_base_path=/m"],
            "INVALID_ARGUMENT: At least one of server_options.grpc_port or "
            "server_options.grpc_socket_path must be set.",
        ),
        (
            [],
            "INVALID_ARGUMENT: Both server_options.model_base_path and "
            "server_options.model_config_file are empty!",
        ),
        (
            ["--model_base_path=/m", "--use_alts_credentials", "--ssl_config_file=/s"],
            "INVALID_ARGUMENT: Either use_alts_credentials must be false or ssl_config_file must "
            "be empty.",
        ),
        (
            ["--model_base_path=/m", "--batching_parameters_file=/b"],
            "INVALID_ARGUMENT: server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        (
            [
                "--model_base_path=/m",
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=2",
                "--tensorflow_inter_op_parallelism=2",
            ],
            "INVALID_ARGUMENT: Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.",
        ),
        (
            ["--model_config_file=/nonexistent/models.config"],
            "NOT_FOUND: /nonexistent/models.config; No such file or directory",
        ),
        (
            [
                "--model_base_path=/m",
                "--port=0",
                "--grpc_socket_path=/tmp/s",
                "--gateway_workers=2",
            ],
            "INVALID_ARGUMENT: --gateway_workers above 1 needs --port: the workers share the gRPC"
            " and REST ports, and --grpc_socket_path takes one listener",
        ),
    ],
    ids=[
        "no-grpc",
        "no-model",
        "alts-and-ssl",
        "batching-file",
        "parallelism",
        "no-config",
        "workers-without-port",
    ],
)
@pytest.mark.process
def test_start_up_checks_fail_as_tf_serving_does(
    tmp_path: Path, argv: list[str], status: str
) -> None:
    done = _serve(tmp_path, *argv)
    assert (done.returncode, done.stdout) == (255, f"Failed to start server. Error: {status}\n")
    assert "Traceback" not in done.stderr
    # The Triton started ahead of the checks (tfsgate.prewarm) was stopped with the start.
    assert not pids_mentioning(f"tritonserver --model-repository={tmp_path.resolve()}")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (
            "--batching_parameters_file",
            "Error parsing text-format tensorflow.serving.BatchingParameters",
        ),
        ("--tensorflow_session_config_file", "Error parsing text-format tensorflow.ConfigProto"),
        ("--ssl_config_file", "Error parsing text-format tensorflow.serving.SSLConfig"),
        (
            "--monitoring_config_file",
            "Error parsing text-format tensorflow.serving.MonitoringConfig",
        ),
    ],
)
@pytest.mark.process
def test_unparseable_flag_files_fail_the_start(
    half_plus_two: Path, tmp_path: Path, flag: str, message: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("improperly formatted file")
    done = _serve(
        tmp_path, f"--model_base_path={half_plus_two}", "--enable_batching", f"{flag}={bad}"
    )
    assert done.returncode == 255
    assert done.stdout == (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{bad}'\n"
    )
    assert message in done.stderr


@pytest.mark.process
def test_missing_flag_file_fails_the_start(half_plus_two: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.config"
    done = _serve(
        tmp_path, f"--model_base_path={half_plus_two}", f"--platform_config_file={missing}"
    )
    assert (done.returncode, done.stdout) == (
        255,
        f"Failed to start server. Error: NOT_FOUND: {missing}; No such file or directory\n",
    )


def session_config(*argv: str) -> Any:
    text = tf_session_config(parse("--model_base_path=/m", *argv))
    return protos.config_pb2.ConfigProto.FromString(base64.b64decode(text)) if text else None


def test_session_flags_build_tf_servings_session_config(tmp_path: Path) -> None:
    """Server::BuildAndStart: the file, then the GPU fraction, then the thread flags over the
    file's (session_parallelism for both when the pair is 0); --mixed_precision=bfloat16."""
    path = tmp_path / "session.txt"
    path.write_text("intra_op_parallelism_threads: 7\nallow_soft_placement: true\n")
    assert session_config() is None  # nothing beyond the pools, which the worker sizes
    config = session_config(
        f"--tensorflow_session_config_file={path}",
        "--per_process_gpu_memory_fraction=0.25",
        "--tensorflow_intra_op_parallelism=2",
        "--mixed_precision=bfloat16",
    )
    assert config.allow_soft_placement
    assert config.gpu_options.per_process_gpu_memory_fraction == 0.25
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (2, 0)
    rewrite = config.graph_options.rewrite_options
    assert rewrite.auto_mixed_precision_onednn_bfloat16 == rewrite.ON
    shared = session_config(
        f"--tensorflow_session_config_file={path}", "--tensorflow_session_parallelism=3"
    )
    assert (shared.intra_op_parallelism_threads, shared.inter_op_parallelism_threads) == (3, 3)
