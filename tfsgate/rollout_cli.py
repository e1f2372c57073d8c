"""``tfsgate traffic|shadow|rollout|feedback``: the rollout verbs over the admin REST API (the
parsers and the run are ``admin_cli.py``'s)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from tfsgate.admin_client import AdminCallError, AdminClient, format_table, path_segment

FEEDBACK_BATCH = 10_000
# ``tfsgate rollout thresholds`` flags: (flag, the API's field, kind, help); kinds: "duration"
# (30s, 5m), "int", "float", "text".
THRESHOLD_FLAGS = (
    ("window", "window_seconds", "duration", "sliding window compared: 30s, 5m"),
    ("min_requests", "min_requests", "int", "candidate requests before it is judged or moved on"),
    ("max_error_rate_increase", "max_error_rate_increase", "float", "over the baseline's rate"),
    ("max_p99_ratio", "max_p99_ratio", "float", "candidate p99 over the baseline's"),
    ("min_p99_increase", "min_p99_increase_seconds", "duration", "p99 increases below are noise"),
    ("min_latency_requests", "min_latency_requests", "int", "requests before p99 is judged"),
    ("quality_metric", "quality_metric", "text", 'feedback metric (accuracy, rmse, ...); "none"'),
    ("max_quality_drop", "max_quality_drop", "float", "how much worse the metric may get"),
    ("min_feedback", "min_feedback", "int", "feedback per version before quality is judged"),
)


def add_rollout_parsers(
    subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser
) -> None:
    traffic = subparsers.add_parser(
        "traffic",
        parents=[common],
        help="show or set the traffic split: tfsgate traffic MODEL stable=90 canary=10",
    )
    traffic.add_argument("model")
    traffic.add_argument("weights", nargs="*", help="VERSION_OR_LABEL=WEIGHT ...")
    traffic.add_argument("--clear", action="store_true", help="remove the split")
    shadow = subparsers.add_parser(
        "shadow", parents=[common], help="copy a share of a model's traffic to a version"
    )
    shadow.add_argument("model")
    shadow.add_argument("version", type=int, nargs="?", help="omit to show the summary")
    shadow.add_argument("--percent", type=float, default=5.0)
    shadow.add_argument("--tolerance", type=float, default=1e-6)
    shadow.add_argument("--off", action="store_true", help="stop shadowing")
    rollout = subparsers.add_parser(
        "rollout",
        parents=[common],
        help="guarded rollouts: start, status, abort; thresholds shows or sets the guard's limits",
    )
    rollout.add_argument("action", choices=("start", "status", "abort", "thresholds"))
    rollout.add_argument("model")
    rollout.add_argument("version", type=int, nargs="?", help="the candidate (start)")
    rollout.add_argument("--steps", default="5,25,50,100", help="candidate percent per step")
    rollout.add_argument("--interval", default="5m", help="time per step: 30s, 5m, 1h")
    limits = rollout.add_argument_group(
        "thresholds",
        "rollout thresholds MODEL [--flag value ...]: the flags given change, the "
        "others keep their stored value",
    )
    for flag, _, _, text in THRESHOLD_FLAGS:
        limits.add_argument(f"--{flag}", default=None, help=text)
    feedback = subparsers.add_parser(
        "feedback", parents=[common], help="send ground truth: one JSON object per line"
    )
    feedback.add_argument("model")
    feedback.add_argument("file", help='JSONL of {"request_id": ..., "value": ...}')


def parse_weights(pairs: Sequence[str]) -> dict[str, float]:
    """``["stable=90", "2=10"]`` -> ``{"stable": 90.0, "2": 10.0}``."""
    weights = {}
    for pair in pairs:
        target, sep, weight = pair.partition("=")
        if not sep or not target:
            raise AdminCallError(f"expected VERSION_OR_LABEL=WEIGHT, got {pair!r}")
        try:
            weights[target] = float(weight)
        except ValueError:
            raise AdminCallError(f"weight of {target!r} is not a number: {weight!r}") from None
    return weights


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``30s``, ``5m`` or ``1h``."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        return float(number) * units[unit]
    except ValueError:
        raise AdminCallError(f"not a duration: {text!r} (try 30s, 5m, 1h)") from None


def _traffic(client: AdminClient, args: argparse.Namespace) -> str:
    path = f"/models/{path_segment(args.model)}/traffic"
    if args.clear or args.weights:
        body = {"weights": {} if args.clear else parse_weights(args.weights)}
        weights = client.call("PUT", path, body)["weights"]
    else:
        weights = client.call("GET", path)["weights"]
    shown = " ".join(f"{k}={v:g}" for k, v in weights.items()) or "(no split: latest version)"
    return f"{args.model}: {shown}"


def _shadow(client: AdminClient, args: argparse.Namespace) -> str:
    path = f"/models/{path_segment(args.model)}/shadow"
    if args.off:
        out = client.call("DELETE", path)
    elif args.version is not None:
        body = {"version": args.version, "percent": args.percent, "tolerance": args.tolerance}
        out = client.call("PUT", path, body)
    else:
        out = client.call("GET", path)
    config = out["shadow"]
    head = (
        f"{args.model}: shadow version {config['version']} at {config['percent']:g} %"
        if config
        else f"{args.model}: no shadow"
    )
    rows = [
        [
            f"{c['primary_version']}->{c['shadow_version']}",
            str(c["requests"]),
            str(c["errors"]),
            f"{c['max_abs_diff']:.6g}",
            f"{c['share_rows_beyond_tolerance']:.4f}",
            f"{c['top_class_change_rate']:.4f}",
            f"{c['mean_shadow_latency_seconds'] * 1000:.2f}",
        ]
        for c in out["comparisons"]
    ]
    header = ["VERSIONS", "REQUESTS", "ERRORS", "MAX_DIFF", "BEYOND_TOL", "TOP_CHANGED", "MS"]
    return head + ("\n" + format_table(header, rows) if rows else "")


def _rollout(client: AdminClient, args: argparse.Namespace) -> str:
    path = f"/models/{path_segment(args.model)}/rollout"
    if args.action == "start":
        if args.version is None:
            raise AdminCallError("rollout start needs MODEL VERSION")
        try:
            steps = [int(s) for s in args.steps.split(",") if s.strip()]
        except ValueError:
            raise AdminCallError(f"steps must be integers, got {args.steps!r}") from None
        body = {
            "version": args.version,
            "steps": steps,
            "interval_seconds": parse_duration(args.interval),
        }
        record = client.call("POST", path, body)
        return f"{args.model}: rollout {record['id']} of version {record['candidate']} started at {record['weight']} %"
    if args.action == "abort":
        record = client.call("POST", path + "/abort")
        return f"{args.model}: rollout {record['id']} aborted (candidate weight 0)"
    if args.action == "thresholds":
        return _thresholds(client, args)
    return format_rollout_status(client.call("GET", path))


def _thresholds(client: AdminClient, args: argparse.Namespace) -> str:
    """Show the model's thresholds, or change the ones given (PUT replaces the whole set, so
    the current values are read first)."""
    path = f"/models/{path_segment(args.model)}/thresholds"
    current = client.call("GET", path)
    changes = {
        field: _threshold_value(flag, kind, getattr(args, flag))
        for flag, field, kind, _ in THRESHOLD_FLAGS
        if getattr(args, flag) is not None
    }
    if changes:
        current = client.call("PUT", path, {**current, **changes})
    rows = [
        [name, "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)]
        for name, value in current.items()
    ]
    return f"{args.model}: rollout thresholds\n" + format_table(["THRESHOLD", "VALUE"], rows)


def _threshold_value(flag: str, kind: str, text: str) -> object:
    if kind == "duration":
        return parse_duration(text)
    if kind == "text":
        return None if text in ("", "none") else text
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        raise AdminCallError(
            f"--{flag} must be a{'n integer' if kind == 'int' else ' number'}, got {text!r}"
        ) from None


def format_rollout_status(status: dict[str, Any]) -> str:
    rollout = status.get("rollout")
    if rollout is None:
        return f"{status['model']}: no rollout"
    lines = [
        f"{status['model']}: rollout {rollout['id']} of version {rollout['candidate']} "
        f"(baseline {rollout['baseline']}) {rollout['state']}, step "
        f"{rollout['step_index'] + 1}/{len(rollout['steps'])} at {rollout['weight']} %"
        + (f": {rollout['reason']}" if rollout["reason"] else "")
    ]
    observation = status.get("observation") or {}
    rows = []
    for role in ("baseline", "candidate"):
        stats = observation.get(role) or {}
        p99 = stats.get("p99_seconds")
        rows.append(
            [
                role,
                str(rollout[role]),
                str(stats.get("requests", 0)),
                f"{stats.get('error_rate', 0.0):.4f}",
                "-" if p99 is None else f"{p99 * 1000:.1f}",
            ]
        )
    lines.append(format_table(["ROLE", "VERSION", "REQUESTS", "ERROR_RATE", "P99_MS"], rows))
    quality = status.get("quality") or {}
    if quality:
        names = sorted({m for q in quality.values() for m in q["metrics"]})
        table = [
            [v, str(q["feedback"]), *(_number(q["metrics"].get(m)) for m in names)]
            for v, q in sorted(quality.items())
        ]
        lines.append(format_table(["VERSION", "FEEDBACK", *[m.upper() for m in names]], table))
    return "\n".join(lines)


def _number(value: object) -> str:
    return "-" if value is None else f"{float(value):.4f}"  # type: ignore[arg-type]


def _feedback(client: AdminClient, args: argparse.Namespace) -> str:
    items = []
    try:
        with open(args.file, encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    try:
                        items.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise AdminCallError(f"{args.file}:{number}: not JSON: {exc}") from None
    except OSError as exc:
        raise AdminCallError(f"cannot read {args.file}: {exc}") from None
    if not items:
        raise AdminCallError(f"{args.file} holds no feedback")
    matched = unmatched = 0
    path = f"/models/{path_segment(args.model)}/feedback"
    for start in range(0, len(items), FEEDBACK_BATCH):
        out = client.call("POST", path, {"feedback": items[start : start + FEEDBACK_BATCH]})
        matched += out["matched"]
        unmatched += out["unmatched"]
    return f"{args.model}: {matched} matched, {unmatched} unmatched"


ROLLOUT_VERBS: dict[str, Callable[[AdminClient, argparse.Namespace], str]] = {
    "traffic": _traffic,
    "shadow": _shadow,
    "rollout": _rollout,
    "feedback": _feedback,
}
