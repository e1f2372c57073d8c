"""Turn ``bench/run.py``'s results JSON into ``docs/benchmarks.md`` and its PNG plots.

Every table is built from the results alone, so a report can be rebuilt without rerunning:
``python -m bench.report docs/benchmarks.json [--baseline docs/benchmarks-before.json]``. The
targets of issue 11 (item 4) are judged here, each beside the figure it is judged on.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from bench import diagnosis
from bench.targets import TARGETS, Results, protocol_name, ratio


# -- markdown --------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(results: Results, baseline: Results | None) -> str:
    header = ["target (issue 11, item 4)", "goal", "measured", "verdict"]
    if baseline is not None:
        header[2:2] = ["before"]
    rows = []
    for target in TARGETS:
        value = target.value(results)
        row = [target.name, target.goal, target.show(value), target.verdict(value)]
        if baseline is not None:
            row[2:2] = [target.show(target.value(baseline))]
        rows.append(row)
    return table(header, rows)


def _other_loads(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        own = [float(tree["other_load"])] if "other_load" in tree else []
        return own + [x for v in tree.values() for x in _other_loads(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _other_loads(v)]
    return []


def _other_range(results: Results) -> str:
    loads = sorted(_other_loads(results))
    if not loads:
        return "no measure of other jobs' load"
    median = loads[len(loads) // 2]
    return (
        f"processes outside the benchmark used {loads[0]:.0%} to {loads[-1]:.0%} of the machine "
        f'during the measured runs (median {median:.0%}; see "other load")'
    )


def _cancelled(tree: Any) -> float:
    if isinstance(tree, dict):
        return float(tree.get("cancelled", 0)) + sum(_cancelled(v) for v in tree.values())
    if isinstance(tree, list):
        return sum(_cancelled(v) for v in tree)
    return 0.0


def _errors(point: dict[str, Any]) -> int:
    return int(point.get("errors", 0) + point.get("server_errors", 0))


def sweep_table(results: Results, kind: str) -> str:
    header = [
        "clients",
        "tfsgate req/s",
        "Triton req/s",
        "ratio",
        "tfsgate p50 / p95 / p99 ms",
        "Triton p50 / p95 / p99 ms",
        "gateway CPU us/req",
        "Triton CPU us/req",
        "errors",
        "other load",
    ]
    rows = []
    for point in results.get("sweep", {}).get(kind, []):
        ours, theirs = point["tfsgate"], point["triton"]
        rows.append(
            [
                str(point["clients"]),
                f"{ours['rps']:.0f}",
                f"{theirs['rps']:.0f}",
                f"{ratio(ours['rps'], theirs['rps']):.2f}x",
                _latencies(ours),
                _latencies(theirs),
                f"{ours['gateway_cpu_us']:.0f}",
                f"{theirs['triton_cpu_us']:.0f}",
                str(_errors(ours) + _errors(theirs)),
                _other(ours, theirs),
            ]
        )
    return table(header, rows)


def _other(*points: dict[str, Any]) -> str:
    """The other jobs' share of the machine during these runs (noise gauge)."""
    shares = [p["other_load"] for p in points if "other_load" in p]
    return f"{max(shares):.0%}" if shares else "?"


def _latencies(point: dict[str, Any]) -> str:
    return f"{point['p50_ms']:.2f} / {point['p95_ms']:.2f} / {point['p99_ms']:.2f}"


def mlp_table(results: Results) -> str:
    mlp = results["mlp"]
    rows = []
    for batching, section in (("on", mlp), ("off", mlp.get("batching_off", {}))):
        for kind in ("rest", "grpc"):
            if kind not in section:
                continue
            pair = section[kind]
            for target, label in (("tfsgate", "tfsgate"), ("triton", "Triton direct")):
                point = pair[target]
                rows.append(
                    [
                        f"{label} {protocol_name(kind)}",
                        batching,
                        f"{point['rps']:.0f}",
                        _latencies(point),
                        f"{point['gateway_cpu_us']:.0f}" if target == "tfsgate" else "",
                        f"{point['triton_cpu_us']:.0f}",
                        str(_errors(point)),
                        _other(point),
                    ]
                )
    naive = mlp.get("naive")
    if naive:
        rows.append(
            [
                "naive FastAPI + TF REST",
                "n/a",
                f"{naive['rps']:.0f}",
                _latencies(naive),
                f"{naive.get('server_cpu_us', math.nan):.0f} (its process)",
                "",
                str(_errors(naive)),
                _other(naive),
            ]
        )
    header = [
        "path",
        "Triton dynamic batching",
        "req/s",
        "p50 / p95 / p99 ms",
        "gateway CPU us/req",
        "Triton CPU us/req",
        "errors",
        "other load",
    ]
    return table(header, rows)


def _size(n: float) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n:.0f} B"


def payload_table(results: Results) -> str:
    rows = []
    for row in results.get("payload", []):
        for kind in ("rest", "grpc"):
            pair = row[kind]
            ours, theirs = pair["tfsgate"], pair["triton"]
            wire = _size(row["json_bytes"]) + " JSON" if kind == "rest" else "raw bytes"
            rows.append(
                [
                    f"{row['floats']} ({_size(row['bytes'])})",
                    f"{protocol_name(kind)} ({wire})",
                    f"{ours['rps']:.0f}",
                    f"{theirs['rps']:.0f}",
                    f"{ratio(ours['rps'], theirs['rps']):.2f}x",
                    f"{ours['p50_ms']:.2f} / {theirs['p50_ms']:.2f}",
                    f"{ours['gateway_cpu_us']:.0f}",
                    str(_errors(ours) + _errors(theirs)),
                    _other(ours, theirs),
                ]
            )
    header = [
        "floats (tensor)",
        "protocol (request body)",
        "tfsgate req/s",
        "Triton req/s",
        "ratio",
        "p50 ms tfsgate / Triton",
        "gateway CPU us/req",
        "errors",
        "other load",
    ]
    return table(header, rows)


def rollout_table(results: Results) -> str:
    r = results["rollout"]
    rows = [
        [name, f"{p['rps']:.0f}", _latencies(p), str(p["errors"])]
        for name, p in (
            ("steady", r["steady"]),
            (f"{r['cycles']} promote/rollback cycles", r["during"]),
        )
    ]
    return table(["period", "req/s", "p50 / p95 / p99 ms", "failed requests"], rows)


def render(results: Results, plots: dict[str, str], title: str, baseline: Results | None) -> str:
    """The whole report; ``plots`` maps a plot's key to its path relative to the report."""
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    plan = results.get("plan", {})
    out = [f"# {title}", ""]
    quick = " (BENCH_QUICK=1: a smoke run, too short to quote)" if plan.get("quick") else ""
    out.append(
        f"Generated by `make bench` on {results.get('started', '?')} from commit "
        f"`{machine.get('commit', '?')}` in {results.get('minutes', 0):.1f} min{quick}. "
        "Everything (load generator, tfsgate, tritonserver and its python-backend stubs) shares "
        f"{machine.get('cores', '?')} cores, so absolute figures drift between runs; every ratio "
        "below compares two runs made back to back in this one session. Load average "
        f"{_load(results.get('load_before'))} at the start, {_load(results.get('load_after'))} "
        f"at the end; {_other_range(results)}."
    )
    out += ["", "## Targets", "", targets_table(results, baseline), ""]
    missed = diagnosis.notes(results)
    if missed:
        out += [
            "### Missed targets: why, and what would close them",
            "",
            "Arithmetic on this run's own figures (`bench/diagnosis.py`): the library floors "
            "and the profile are further down.",
            "",
            *[f"- {note}" for note in missed],
            "",
        ]
    out += [
        "For scale, the added latency other serving layers put in front of a model server "
        "(as issue 11 quotes them): KServe's queue-proxy 2-3 ms, Seldon v1's orchestrator up to "
        "4 ms, Ray Serve 1-2 ms.",
        "",
    ]
    out += [
        "## Machine and versions",
        "",
        table(
            ["what", "value"],
            [
                ["CPU", f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores"],
                ["memory", f"{machine.get('memory_gb', '?')} GB"],
                ["OS / kernel", f"{machine.get('os', '?')} / {machine.get('kernel', '?')}"],
                *[[name, str(value)] for name, value in sorted(versions.items())],
            ],
        ),
        "",
        "## How it is measured",
        "",
        "`make bench` installs `wrk` and `nghttp2-client` (h2load) from Debian's packages if "
        "missing, matplotlib from the `bench` extra, writes example SavedModels with "
        "`tfsgate.examples`, then starts `tfsgate serve` (embedded Triton, SQLite) on free "
        "loopback ports with a `models.config` serving half_plus_two (versions 1 and 2, policy "
        "`all`), `mlp` (3 dense layers of 1024, one row per request) and `scale` (`2x`, one row "
        "of 1 to 262,144 floats). Triton direct is the same tritonserver's own HTTP and gRPC "
        "ports (`$TFSGATE_HOME/triton/endpoints.json`), same model version and tensor "
        "(KServe-v2 JSON over HTTP, `raw_input_contents` over gRPC, as tfsgate itself sends "
        "upstream). Each point is a 1 s warm-up then a closed-loop run of "
        f"{plan.get('seconds', '?')} s with one load-generator thread and N connections (one "
        "request in flight each); Triton direct runs first, tfsgate right after. The gateway's "
        "CPU per request is utime+stime of the `tfsgate serve` process alone (`/proc/PID/stat`, "
        "all threads) over the run divided by the requests completed; Triton's is the same sum "
        "over its process group (tritonserver, stubs, TensorFlow workers). gRPC answers are "
        "checked once per body with the official Python clients (values for half_plus_two) and "
        "for every run by the servers' own counters (`tfsgate_requests_total` by code, Triton's "
        "`nv_inference_request_failure`): the error columns add those to the load generator's "
        "non-2xx and socket errors; requests a load generator abandons when its time is up "
        f'are cancelled, not errors ({_cancelled(results):.0f} in this run). "Other load" is '
        "the share of the machine's CPU that processes outside the benchmark used during a run "
        "(`/proc/stat` less the benchmark's own processes; the larger of the pair): the noise "
        "gauge for that row (it includes kernel time not charged to any process, such as "
        "loopback network processing in softirq).",
        "",
        "Commands (ports are free ports of that run):",
        "",
        "```sh",
        "make bench            # or: BENCH_QUICK=1 make bench",
        *[f"# {name}\n{command}" for name, command in sorted(results.get("commands", {}).items())],
        "```",
        "",
    ]
    for kind in ("rest", "grpc"):
        out += [
            f"## Concurrency sweep, {protocol_name(kind)}, half_plus_two (x = [[1], [2], [5]])",
            "",
            sweep_table(results, kind),
            "",
        ]
    out += [
        _image(plots, "sweep_rps", "requests/s"),
        _image(plots, "sweep_latency", "latency"),
        _image(plots, "cpu", "gateway CPU per request"),
        "",
    ]
    if "mlp" in results:
        out += [
            f"## MLP (3 x 1024 dense), {results['mlp']['clients']} clients, one row per request",
            "",
            "Triton's dynamic batching off: the same Triton model reloaded through the "
            "repository API with its config minus `dynamic_batching` (tfsgate's own coalescing "
            "of concurrent requests stays on). The naive server is `bench/naive_server.py`: "
            "FastAPI, one uvicorn worker, the TensorFlow signature called in-process per request.",
            "",
            mlp_table(results),
            "",
            _image(plots, "mlp", "MLP"),
            "",
        ]
    if "payload" in results:
        clients = plan.get("payload_clients", "?")
        out += [
            f"## Payload size, `scale` model, one row, {clients} clients",
            "",
            "REST sends TF Serving's JSON row format to tfsgate and KServe-v2 JSON to Triton; "
            "gRPC sends `tensor_content` to tfsgate and `raw_input_contents` to Triton. tfsgate "
            "answers gRPC in TF Serving's typed `float_val` (its default).",
            "",
            payload_table(results),
            "",
            _image(plots, "payload", "payload"),
            "",
        ]
    if "rollout" in results:
        r = results["rollout"]
        out += [
            f"## p99 during promote/rollback, {r['clients']} clients on `labels/stable`",
            "",
            f"{r['cycles']} cycles of `POST /v1/admin/models/half_plus_two/promote "
            '{"version": 2}` and `.../rollback` spread over the run, against the same run with '
            f"none. Admin calls: p50 {r['admin_p50_ms']:.0f} ms, slowest "
            f"{r['admin_max_ms']:.0f} ms, {r['admin_failures']} failed.",
            "",
            rollout_table(results),
            "",
        ]
    out += ["## Memory and start-up", "", _memory_table(results), ""]
    if results.get("workers"):
        out += [
            "## Gateway workers: `tfsgate gateway --gateway_workers` 1 vs 2",
            "",
            "A `tfsgate gateway` beside the main `tfsgate serve` (its catalog, its Triton through "
            "the routing feed), half_plus_two; CPU is the gateway's process tree (supervisor and "
            "workers). Two workers share the ports through SO_REUSEPORT; on a 2-core machine "
            "that also runs Triton and the load generator they compete for the same cores.",
            "",
            _workers_table(results["workers"]),
            "",
        ]
    if results.get("floors"):
        out += [
            "## Library floors: do-nothing servers under the same load",
            "",
            "`bench/floors.py`: each front-door library answering half_plus_two's fixed Predict "
            "answer with no work at all, loaded by the same h2load/wrk commands; CPU is the "
            "server process's. A gateway built on that library cannot cost less per request.",
            "",
            _floors_table(results["floors"]),
            "",
        ]
    if results.get("profile"):
        out += [
            "## Where the gateway's CPU goes (py-spy, 16 clients)",
            "",
            "Separate runs from the measured ones (sampling costs CPU), half_plus_two, "
            "`py-spy record --format raw --nonblocking` on the `tfsgate serve` process. Shares "
            "are of the Python samples: the leaf frame's package (a C extension's time is "
            "charged to the Python code calling it; grpc.aio's Cython callbacks show as "
            "`Handle._run`), the leaf functions, and tfsgate's own functions found anywhere on "
            "the stack (inclusive). gRPC's C-core threads are not sampled.",
            "",
        ]
        for kind, prof in results["profile"].items():
            out += [
                f"### {protocol_name(kind)}: {prof['samples']} samples at {prof['rps']:.0f} req/s",
                "",
            ]
            out += [_share_table("package (self)", prof["by_package"][:10]), ""]
            out += [_share_table("function (self)", prof["by_function"][:12]), ""]
            out += [_share_table("tfsgate function (inclusive)", prof["inclusive"][:12]), ""]
    out += [
        "Raw figures: the JSON next to this file. Rebuild this page from it with "
        "`python -m bench.report <that json>`.",
        "",
    ]
    return "\n".join(out)


def _workers_table(rows: list[dict[str, Any]]) -> str:
    one = {(r["kind"], r["clients"]): r["rps"] for r in rows if r["workers"] == 1}
    return table(
        ["workers", "protocol", "clients", "req/s", "vs 1 worker", "p50 / p95 / p99 ms"]
        + ["gateway CPU us/req", "errors"],
        [
            [
                str(row["workers"]),
                protocol_name(row["kind"]),
                str(row["clients"]),
                f"{row['rps']:.0f}",
                f"{ratio(row['rps'], one.get((row['kind'], row['clients']), 0.0)):.2f}x",
                _latencies(row),
                f"{row['gateway_cpu_us']:.0f}",
                str(row["errors"]),
            ]
            for row in rows
        ],
    )


def _floors_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["server", "clients", "req/s", "p50 / p95 / p99 ms", "server CPU us/req", "errors"],
        [
            [
                f"`{row['kind']}`",
                str(row["clients"]),
                f"{row['rps']:.0f}",
                _latencies(row),
                f"{row['server_cpu_us']:.0f}",
                str(row["errors"]),
            ]
            for row in rows
        ],
    )


def _share_table(what: str, rows: list[Any]) -> str:
    return table([what, "share"], [[f"`{name}`", f"{share:.1%}"] for name, share in rows])


def _memory_table(results: Results) -> str:
    rows = []
    cold = results.get("cold_start", {})
    if cold:
        rows.append(
            [
                "spawn -> first REST prediction, fresh home (conversion included)",
                f"{cold['fresh_s']:.2f} s",
            ]
        )
        rows.append(
            [
                "spawn -> first REST prediction, restart on the same home",
                f"{cold['restart_s']:.2f} s",
            ]
        )
    for key, label in (
        ("memory_idle", "idle, half_plus_two only"),
        ("memory_loaded", "after the sweeps"),
        ("memory_end", "after all runs"),
    ):
        if key in results:
            m = results[key]
            rows.append(
                [f"gateway RSS, {label}", f"{m['rss_mb']:.0f} MB (peak {m['peak_rss_mb']:.0f} MB)"]
            )
    return table(["what", "value"], rows)


def _load(value: Any) -> str:
    return " ".join(f"{v:.1f}" for v in value) if value else "?"


def _image(plots: dict[str, str], key: str, alt: str) -> str:
    return f"![{alt}]({plots[key]})" if key in plots else ""


def write(
    results: Results, out: Path, plot_dir: Path, title: str, baseline: Results | None = None
) -> None:
    from bench.plots import make_plots

    made = make_plots(results, plot_dir)
    relative = {key: os.path.relpath(path, out.parent) for key, path in made.items()}
    out.write_text(render(results, relative, title, baseline))


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", help="the JSON bench/run.py wrote")
    parser.add_argument("--out", default=None, help="default: the JSON's name with .md")
    parser.add_argument("--plots", default=None, help="default: a directory named as --out")
    parser.add_argument("--title", default="Benchmarks")
    parser.add_argument("--baseline", default=None)
    args = parser.parse_args()
    source = Path(args.results)
    out = Path(args.out) if args.out else source.with_suffix(".md")
    plots = Path(args.plots) if args.plots else out.parent / out.stem
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    write(json.loads(source.read_text()), out, plots, args.title, baseline)


if __name__ == "__main__":
    main()
