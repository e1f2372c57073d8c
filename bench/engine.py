"""Issue 8's closing measurements: the engine's runners, batching, memory and start-up.

``python -m bench.engine [--sections mlp,memory,fifty] [--seconds 10] [--clients 32]
[--out var/engine-bench.json]``, under ``flock /work/coord/heavy.lock`` on a shared machine.

- ``mlp``: the 3 x 1024 MLP (``tfsgate.examples.write_mlp``), one row per REST :predict, ``wrk``
  with N closed-loop connections: ONNX Runtime runner vs TensorFlow runner, each with batching off
  (no flags) and on (``--enable_batching``, max_batch_size 32, batch_timeout_micros 500), and the
  naive FastAPI server calling the TensorFlow signature in-process (``bench/naive_server.py``).
- ``memory``: RSS and PSS of the whole ``tfsgate serve`` process tree serving the example
  half_plus_two (after the export child left), and what each extra version of an ONNX-served
  one-signature model adds (1 version vs 4).
- ``fifty``: 50 one-signature models in one config file: start-up time until all 50 answer, and
  the tree's RSS/PSS.

Everything runs on loopback from this checkout; load generator and servers share the cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import loadgen
from bench.bodies import MODEL_INFER_PATH, PREDICT_PATH, Case, write_bodies
from bench.procs import ROOT, spawn_serve, stop, wait_http
from tests.support.procs import tree
from tfsgate.core.ports import free_port

MODEL_WRITE = (
    "import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n"
    "from tfsgate import examples\n"
    "getattr(examples, sys.argv[1])(sys.argv[2])\n"
)
BATCHING = (
    "max_batch_size { value: 32 }\n"
    "batch_timeout_micros { value: 500 }\n"
    "max_enqueued_batches { value: 1000 }\n"
    "num_batch_threads { value: 1 }\n"
)


def write_model(kind: str, target: Path) -> Path:
    if not (target / "saved_model.pb").exists():
        subprocess.run([sys.executable, "-c", MODEL_WRITE, kind, str(target)], check=True)
    return target


# -- process trees -------------------------------------------------------------------------------
def _smaps(pid: int) -> tuple[float, float]:
    rss = pss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS summed over the tree (shared pages counted in every process) and PSS (shared pages
    divided among the processes that map them), in MiB, with the processes."""
    rows: list[dict[str, Any]] = []
    for member in tree(pid):
        rss, pss = _smaps(member)
        command = _command(member)
        kind = (
            "tfsgate"
            if "tfsgate.cli" in command
            else "tritonserver"
            if "tritonserver" in command and "stub" not in command
            else "tf_worker"
            if "tf_worker.py" in command
            else "export child"
            if "converter.export" in command
            else "stub"
        )
        rows.append(
            {"pid": member, "kind": kind, "rss_mib": round(rss, 1), "pss_mib": round(pss, 1)}
        )
    return {
        "processes": len(rows),
        "rss_mib": round(sum(r["rss_mib"] for r in rows), 1),
        "pss_mib": round(sum(r["pss_mib"] for r in rows), 1),
        "by_kind": {
            kind: {
                "count": sum(1 for r in rows if r["kind"] == kind),
                "rss_mib": round(sum(r["rss_mib"] for r in rows if r["kind"] == kind), 1),
            }
            for kind in sorted({r["kind"] for r in rows})
        },
    }


def _cpu(pid: int) -> dict[str, float]:
    """CPU seconds (utime+stime) of the tree's processes by kind."""
    found: dict[str, float] = {}
    ticks = 100.0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        command = _command(member)
        kind = (
            "gateway+control plane"
            if "tfsgate.cli" in command
            else "tritonserver"
            if "tritonserver" in command and "stub" not in command
            else "tf_worker"
            if "tf_worker.py" in command
            else "stubs"
        )
        found[kind] = found.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return found


def settled_memory(pid: int, timeout: float = 90) -> dict[str, Any]:
    """Tree memory once the export child has left (it stays 15 s after its last job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any("converter.export" in _command(p) for p in tree(pid)):
            break
        time.sleep(0.5)
    time.sleep(1.0)
    return tree_memory(pid)


def config_file(path: Path, models: dict[str, Path], policy: str = "") -> Path:
    entries = [
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {policy} }}'
        for name, base in models.items()
    ]
    path.write_text("model_config_list {\n" + "\n".join(entries) + "\n}\n")
    return path


def wait_model(rest_url: str, model: str, body: Any, timeout: float = 900) -> None:
    wait_http(f"{rest_url}/v1/models/{model}:predict", timeout, "POST", body)


# -- sections ------------------------------------------------------------------------------------
def bench_mlp(work: Path, seconds: float, clients: int) -> dict[str, Any]:
    base = work / "models" / "mlp"
    write_model("write_mlp", base / "1")
    row = [round(0.001 * i, 3) for i in range(1024)]
    array = np.array([row], np.float32)
    # Triton direct per runner: ONNX Runtime serves the signature in the model's shared Triton
    # model (prefixed tensors), the TensorFlow runner in one of its own (tfsgate/core/naming.py).
    cases = {
        "onnxruntime": Case.of("mlp", 1, "x", "output_0", array),
        "tensorflow": Case.of("mlp", 1, "x", "output_0", array, shared=False),
    }
    every = {runner: write_bodies(c, work / "bodies" / runner) for runner, c in cases.items()}
    bodies = every["onnxruntime"]  # TF Serving's bodies are the same for both
    script = loadgen.write_wrk_script(bodies.rest, work / "mlp.lua")
    (work / "batching.txt").write_text(BATCHING)
    batching = ["--enable_batching", f"--batching_parameters_file={work / 'batching.txt'}"]
    results: dict[str, Any] = {"clients": clients, "seconds": seconds}
    for runner, extra in (
        ("onnxruntime", []),
        ("onnxruntime", batching),
        ("tensorflow", []),
        ("tensorflow", batching),
    ):
        name = f"{runner}+batching" if extra else runner
        args = ["--model_name=mlp", f"--model_base_path={base}", f"--runner={runner}", *extra]
        serve = spawn_serve(work / f"home-{name}", args, False)
        try:
            wait_model(serve.rest_url, "mlp", {"instances": [row]})
            url = f"{serve.rest_url}/v1/models/mlp:predict"
            loadgen.run_wrk(url, script, clients, 2)  # warm the path
            before = _cpu(serve.process.pid)
            rest = loadgen.run_wrk(url, script, clients, seconds)
            after = _cpu(serve.process.pid)
            entry: dict[str, Any] = {"rest": rest.as_dict()}
            entry["rest_cpu_ms_per_request"] = {
                kind: round(
                    1000 * (after.get(kind, 0.0) - before.get(kind, 0.0)) / rest.requests, 3
                )
                for kind in after
            }
            grpc_url = f"http://127.0.0.1:{serve.grpc_port}{PREDICT_PATH}"
            entry["grpc"] = loadgen.run_h2load_answered(
                grpc_url, bodies.predict, clients, seconds, work / "h2load.log"
            ).as_dict()
            triton = json.loads((serve.home / "triton" / "endpoints.json").read_text())
            direct = f"http://{triton['grpc_url']}{MODEL_INFER_PATH}"
            # By count: h2load's timed end cancels calls, which Triton's gRPC frontend can crash on
            entry["triton_direct"] = loadgen.run_h2load_answered(
                direct, every[runner].model_infer, clients, seconds, work / "h2load.log"
            ).as_dict()
            results[name] = entry
        finally:
            stop(serve.process)
        print(name, results[name], flush=True)
    port = free_port()
    naive = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.naive_server",
            "--model_name=mlp",
            f"--model_path={base / '1'}",
            f"--port={port}",
        ],
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/models/mlp:predict"
        row = array[0].tolist()
        wait_http(url, 300, "POST", {"instances": [row]})
        loadgen.run_wrk(url, script, clients, 2)
        results["fastapi+tensorflow"] = loadgen.run_wrk(url, script, clients, seconds).as_dict()
    finally:
        stop(naive)
    print("fastapi+tensorflow", results["fastapi+tensorflow"], flush=True)
    return results


def bench_memory(work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    base = work / "models" / "half_plus_two"
    write_model("write_half_plus_two", base / "1")
    serve = spawn_serve(
        work / "home-hpt", ["--model_name=half_plus_two", f"--model_base_path={base}"], False
    )
    try:
        wait_model(serve.rest_url, "half_plus_two", {"instances": [1.0]})
        results["half_plus_two"] = settled_memory(serve.process.pid)
    finally:
        stop(serve.process)
    print("half_plus_two", results["half_plus_two"], flush=True)
    scale = work / "models" / "scale"
    for version in (1, 2, 3, 4):
        write_model("write_scale", scale / str(version))
    trees = {}
    for policy, label in (
        ("model_version_policy { latest { num_versions: 1 } }", 1),
        (
            "model_version_policy { all {} }",
            4,
        ),
    ):
        config = config_file(work / f"scale-{label}.config", {"scale": scale}, policy)
        serve = spawn_serve(work / f"home-scale-{label}", [f"--model_config_file={config}"], False)
        try:
            wait_model(serve.rest_url, "scale", {"instances": [[1.0]]})
            time.sleep(2)
            trees[label] = settled_memory(serve.process.pid)
        finally:
            stop(serve.process)
    results["scale_1_version"] = trees[1]
    results["scale_4_versions"] = trees[4]
    results["per_extra_version"] = {
        "rss_mib": round((trees[4]["rss_mib"] - trees[1]["rss_mib"]) / 3, 1),
        "pss_mib": round((trees[4]["pss_mib"] - trees[1]["pss_mib"]) / 3, 1),
    }
    print("per extra version", results["per_extra_version"], flush=True)
    return results


def bench_fifty(work: Path, count: int = 50) -> dict[str, Any]:
    source = write_model("write_scale", work / "models" / "scale-src" / "1")
    models = {}
    for index in range(count):
        base = work / "models" / "fifty" / f"m{index:02d}"
        if not (base / "1").exists():
            shutil.copytree(source, base / "1")
        models[f"m{index:02d}"] = base
    config = config_file(work / "fifty.config", models)
    started = time.monotonic()
    serve = spawn_serve(work / "home-fifty", [f"--model_config_file={config}"], False)
    try:
        with httpx.Client(timeout=10) as client:
            pending = set(models)
            deadline = time.monotonic() + 1800
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    try:
                        answer = client.post(
                            f"{serve.rest_url}/v1/models/{name}:predict",
                            json={"instances": [[1.0]]},
                        )
                    except httpx.HTTPError:
                        break
                    if answer.status_code != 200:
                        break
                    pending.discard(name)
                if pending:
                    time.sleep(0.2)
        startup = time.monotonic() - started
        memory = settled_memory(serve.process.pid)
    finally:
        stop(serve.process)
    result = {"models": count, "startup_seconds": round(startup, 1), "memory": memory}
    print("fifty", result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="mlp,memory,fifty")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--work", default="", help="scratch directory (default: a temp dir)")
    parser.add_argument("--out", default="var/engine-bench.json")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="engine-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    sections = args.sections.split(",")
    if "memory" in sections:
        results["memory"] = bench_memory(work)
    if "fifty" in sections:
        results["fifty"] = bench_fifty(work)
    if "mlp" in sections:
        results["mlp"] = bench_mlp(work, args.seconds, args.clients)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
