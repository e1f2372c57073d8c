"""``tfsgate serve`` started with TF Serving's own command lines, and with TLS.

The long command line is the one TF Serving's model-server tests build (``RunServer`` in
``tensorflow_model_server_test_base.py``: ports, REST timeout, gRPC socket, model, batching,
monitoring, config poll, ``--grpc_channel_arguments=grpc.so_reuseaddr=1``) plus flags from its
docs and Dockerfiles. The TLS server reads an ``SSLConfig`` with a self-signed server certificate
and requires client certificates signed by ``custom_ca``, on REST and gRPC alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.support.pki import Pki, client_context
from tests.support.servers import ServerProcess, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

BATCHING_CONFIG = """\
max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""
MONITORING_CONFIG = """\
prometheus_config: {
  enable: true,
  path: "/monitoring/prometheus/metrics_here"
}
"""


def predict_request(model: str = "default") -> Any:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.float_val.append(2.0)
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)  # VerifyPredictRequest(batch_input=True)
    request.output_filter.append("y")
    return request


# -- TF Serving's test command line --------------------------------------------------------------


@pytest.fixture(scope="module")
def tf_serving_style(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path]]:
    home = tmp_path_factory.mktemp("tfs-command-line")
    batching, monitoring = home / "batching_config.txt", home / "monitoring_config.txt"
    batching.write_text(BATCHING_CONFIG)
    monitoring.write_text(MONITORING_CONFIG)
    socket_path = home / "tf-serving.sock"
    args = [  # ports, --home and --host come from start_server
        "--rest_api_timeout_in_ms=5000",
        f"--grpc_socket_path={socket_path}",
        "--model_name=default",
        f"--model_base_path={half_plus_two}",
        f"--monitoring_config_file={monitoring}",
        "--model_config_file_poll_wait_seconds=60",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        "--grpc_channel_arguments=grpc.so_reuseaddr=1,grpc.max_connection_age_ms=600000",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        "--enable_model_warmup=true",
        "--file_system_poll_wait_seconds=1",
        "--rest_api_num_threads=16",
        "--grpc_max_threads=64",
        "--enable_grpc_healthcheck_service",
        "--xla_cpu_compilation_enabled=false",
        "--num_load_threads=2",
        "--flush_filesystem_caches",
        "--per_process_gpu_memory_fraction=0.5",
        "--mixed_precision=bfloat16",
        "--allow_version_labels_for_unavailable_models",
        "--saved_model_tags=serve",
    ]
    with start_server(home, args) as server:
        yield server, socket_path


def test_serves_over_grpc_tcp_and_socket(tf_serving_style: tuple[ServerProcess, Path]) -> None:
    server, socket_path = tf_serving_style
    for target in (server.grpc_target, f"unix:{socket_path}"):
        with grpc.insecure_channel(target) as channel:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(predict_request(), timeout=30)
        assert list(response.outputs["y"].float_val) == [3.0]
        assert response.model_spec.version.value == 123


def test_rest_and_the_monitoring_path(tf_serving_style: tuple[ServerProcess, Path]) -> None:
    server, _ = tf_serving_style
    answer = httpx.post(
        f"{server.rest_url}/v1/models/default:predict", json={"instances": [2.0]}, timeout=30
    )
    assert answer.json() == {"predictions": [3.0]}
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics_here", timeout=30)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    default = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30)
    assert default.status_code == 400  # not a metrics path in this config: a malformed request


def test_health_names_and_profiler(tf_serving_style: tuple[ServerProcess, Path]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server, _ = tf_serving_style
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("ModelService", "PredictionService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        profile = channel.unary_unary("/tensorflow.ProfilerService/Profile")
        with pytest.raises(grpc.RpcError) as caught:
            profile(b"", timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "tfsgate serves no TensorFlow profiler" in caught.value.details()


def test_flags_without_effect_are_named_once(tf_serving_style: tuple[ServerProcess, Path]) -> None:
    server, _ = tf_serving_style
    lines = [line for line in server.log().splitlines() if "no effect in tfsgate" in line]
    assert len(lines) == 1
    named = set(lines[0].rsplit(": ", 1)[1].split(", "))
    assert {"--num_load_threads", "--xla_cpu_compilation_enabled"} <= named
    honoured = {"--grpc_channel_arguments", "--monitoring_config_file", "--rest_api_num_threads"}
    honoured |= {"--per_process_gpu_memory_fraction", "--mixed_precision"}
    assert not named & (honoured | {"--grpc_max_threads", "--grpc_socket_path", "--model_name"})


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Pki]]:
    home = tmp_path_factory.mktemp("tls")
    pki = Pki(home)
    config = home / "ssl_config.txt"
    config.write_text(pki.ssl_config())
    args = ["--model_name=default", f"--model_base_path={half_plus_two}"]
    args.append(f"--ssl_config_file={config}")
    with start_server(home, args, tls=client_context(pki, client_cert=True)) as server:
        yield server, pki


def _https(pki: Pki, client_cert: bool) -> httpx.Client:
    return httpx.Client(verify=client_context(pki, client_cert), timeout=30)


def test_rest_over_tls_with_a_client_certificate(tls_server: tuple[ServerProcess, Pki]) -> None:
    server, pki = tls_server
    url = f"https://localhost:{server.rest_port}/v1/models/default:predict"
    with _https(pki, client_cert=True) as client:
        assert client.post(url, json={"instances": [2.0]}).json() == {"predictions": [3.0]}
    with _https(pki, client_cert=False) as client, pytest.raises(httpx.HTTPError):
        client.post(url, json={"instances": [2.0]})
    with pytest.raises(httpx.HTTPError):
        httpx.post(url.replace("https", "http"), json={"instances": [2.0]}, timeout=30)


def test_grpc_over_tls_with_a_client_certificate(tls_server: tuple[ServerProcess, Pki]) -> None:
    server, pki = tls_server
    target = f"localhost:{server.grpc_port}"
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.server_cert.encode(),
        private_key=pki.client_key.encode(),
        certificate_chain=pki.client_cert.encode(),
    )
    with grpc.secure_channel(target, credentials) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert list(stub.Predict(predict_request(), timeout=30).outputs["y"].float_val) == [3.0]
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki.server_cert.encode())
    for channel in (grpc.secure_channel(target, anonymous), grpc.insecure_channel(target)):
        with channel, pytest.raises(grpc.RpcError) as caught:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            stub.Predict(predict_request(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
