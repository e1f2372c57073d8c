"""deploy/kubernetes: every overlay renders with kustomize and validates offline.

Built-in kinds against the Kubernetes OpenAPI schemas that the kubernetes-validate package ships
(strict: unknown fields are errors), for the oldest and the newest version it knows; the
ServiceMonitor against prometheus-operator's CRD schema (its generated validators from npm, run
with node); then the cross references a schema cannot see: Service selectors and port names,
the ServiceMonitor's endpoints, the HPA's target, Triton's GPU and readiness, the Triton replicas
every --triton_url list names, Secrets referenced and never committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
CRD_CHECK = Path(__file__).resolve().parent / "crd"
OVERLAYS = ["gpu", "cpu"]
# grpc probes are GA from 1.27; autoscaling/v2 from 1.23. The oldest and newest schemas checked:
VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]
CUSTOM_KINDS = {"ServiceMonitor"}
SECRETS = {
    "tfsgate-database": {"url"},
    "tfsgate-admin": {"token"},
    "tfsgate-triton": {"repository-key"},
}
Doc = dict[str, Any]


def render(overlay: str) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]


def containers(workload: Doc) -> list[Doc]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_kinds_validate_against_kubernetes_schemas(
    manifests: list[Doc], version: str
) -> None:
    validated = set()
    for doc in manifests:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises on a schema error
        validated.add(doc["kind"])
    assert {"Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler"} <= validated


def test_only_known_custom_resources(manifests: list[Doc]) -> None:
    kinds = {doc["kind"] for doc in manifests}
    assert kinds & CUSTOM_KINDS == {"ServiceMonitor"}
    for doc in manifests:
        if doc["kind"] in CUSTOM_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"


def test_servicemonitor_validates_against_prometheus_operator_crd(manifests: list[Doc]) -> None:
    node = shutil.which("node")
    if node is None or not (CRD_CHECK / "node_modules").is_dir():
        pytest.skip(
            "node or tests/deploy/crd/node_modules missing: `make test` installs it with npm"
        )
    result = subprocess.run(
        [node, str(CRD_CHECK / "validate.mjs")],
        input=json.dumps(manifests),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid ServiceMonitor/tfsgate" in result.stdout


def test_services_select_pods_and_name_their_ports(manifests: list[Doc]) -> None:
    for service in of_kind(manifests, "Service"):
        selector = service["spec"]["selector"]
        (workload,) = [
            w
            for w in workloads(manifests)
            if matches(selector, w["spec"]["template"]["metadata"]["labels"])
        ]
        ports = {
            p["name"]
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port}"


def test_servicemonitor_scrapes_every_role_on_its_metrics_port(manifests: list[Doc]) -> None:
    (monitor,) = of_kind(manifests, "ServiceMonitor")
    selected = [
        s
        for s in of_kind(manifests, "Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))
    ]
    # The job label is the Service name: the same job names as deploy/prometheus/prometheus.yml.
    paths = {
        "tfsgate-gateway": "/monitoring/prometheus/metrics",
        "tfsgate-control-plane": "/metrics",
        "triton": "/metrics",
    }
    assert {s["metadata"]["name"] for s in selected} == set(paths)
    endpoints = {e["port"]: e["path"] for e in monitor["spec"]["endpoints"]}
    for service in selected:
        scraped = [p["name"] for p in service["spec"]["ports"] if p["name"] in endpoints]
        assert len(scraped) == 1, f"{service['metadata']['name']} scraped on {scraped}"
        assert endpoints[scraped[0]] == paths[service["metadata"]["name"]]


def test_gateway_is_autoscaled_and_probed_over_grpc_health(manifests: list[Doc]) -> None:
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    gateway = named(manifests, target["kind"], target["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "gateway"
    assert container["readinessProbe"]["grpc"]["service"] == "tensorflow.serving.PredictionService"


def test_triton_readiness_restricted_repository_and_gpu(manifests: list[Doc]) -> None:
    triton = named(manifests, "StatefulSet", "triton")
    (container,) = triton["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    args = container["args"]
    assert "--model-control-mode=explicit" in args
    for flag in ("--grpc-restricted-protocol", "--http-restricted-api"):
        (value,) = [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]
        assert value.startswith("model-repository:") and "$(TRITON_REPOSITORY_KEY)" in value
    gpu = container["resources"].get("limits", {}).get("nvidia.com/gpu")
    if container["image"].startswith("nvcr.io/nvidia/tritonserver:"):
        assert gpu == 1 and container["image"].endswith("-py3")
    else:  # the CPU overlay: tfsgate's image provides the Triton binary
        assert gpu is None and container["image"].startswith("tfsgate:")


def test_every_triton_replica_is_listed_by_gateway_and_control_plane(manifests: list[Doc]) -> None:
    triton = named(manifests, "StatefulSet", "triton")
    service = triton["spec"]["serviceName"]
    expected = [
        f"--triton_url={triton['metadata']['name']}-{i}.{service}:8001"
        for i in range(triton["spec"]["replicas"])
    ]
    for name in ("tfsgate-gateway", "tfsgate-control-plane"):
        (container,) = named(manifests, "Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ]
        assert [a for a in container["args"] if a.startswith("--triton_url=")] == expected


def test_control_plane_migrates_an_external_postgres_first(manifests: list[Doc]) -> None:
    control = named(manifests, "Deployment", "tfsgate-control-plane")
    (init,) = control["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:3] == ["tfsgate", "db", "upgrade"]
    assert control["spec"]["replicas"] == 2  # one leader, one hot standby
    # PostgreSQL is external: nothing here runs it.
    assert not [w for w in workloads(manifests) if "postgres" in w["metadata"]["name"]]


def test_secrets_are_referenced_never_committed(manifests: list[Doc]) -> None:
    assert not of_kind(manifests, "Secret")
    referenced: dict[str, set[str]] = {}
    for workload in workloads(manifests):
        for container in containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.setdefault(ref["name"], set()).add(ref["key"])
    assert referenced == SECRETS  # the Secrets docs/deploy.md tells operators to create


def test_gateways_serve_tf_servings_metrics_and_control_plane_knows_the_triton_flavor(
    manifests: list[Doc],
) -> None:
    gateway = named(manifests, "Deployment", "tfsgate-gateway")["spec"]["template"]["spec"]
    (container,) = gateway["containers"]
    (flag,) = [a for a in container["args"] if a.startswith("--monitoring_config_file=")]
    directory, file = flag.split("=", 1)[1].rsplit("/", 1)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in gateway["volumes"] if v["name"] == mount["name"]]
    config = named(manifests, "ConfigMap", volume["configMap"]["name"])["data"][file]
    assert "enable: true" in config and 'path: "/monitoring/prometheus/metrics"' in config
    triton = named(manifests, "StatefulSet", "triton")["spec"]["template"]["spec"]["containers"]
    control = named(manifests, "Deployment", "tfsgate-control-plane")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in control["containers"][0]["env"]}
    on_gpu = triton[0]["image"].startswith("nvcr.io/")
    assert env["TFSGATE_TRITON_FLAVOR"] == ("gpu" if on_gpu else "cpu")
    # Triton replicas have an emptyDir repository: model files are pushed with each load.
    pod = named(manifests, "StatefulSet", "triton")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert "--triton_push_model_files" in control["containers"][0]["args"]
