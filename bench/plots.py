"""The report's PNG plots (matplotlib, the ``bench`` extra), from the results JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.targets import Results, protocol_name


def make_plots(results: Results, directory: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    sweep = results.get("sweep", {})
    colors = {"tfsgate": "tab:blue", "triton": "tab:green"}

    if sweep:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, kind in zip(axes, ("rest", "grpc"), strict=True):
            points = sweep.get(kind, [])
            clients = [p["clients"] for p in points]
            for target in ("tfsgate", "triton"):
                ax.plot(
                    clients,
                    [p[target]["rps"] for p in points],
                    "o-",
                    color=colors[target],
                    label=target if target == "tfsgate" else "Triton direct",
                )
            ax.set_xscale("log", base=2)
            ax.set_xticks(clients, [str(c) for c in clients])
            ax.set_title(f"{protocol_name(kind)}: requests/s")
            ax.set_xlabel("concurrent clients")
            ax.grid(alpha=0.3)
            ax.legend()
        made["sweep_rps"] = _save(fig, directory / "sweep_rps.png")

        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, kind in zip(axes, ("rest", "grpc"), strict=True):
            points = sweep.get(kind, [])
            clients = [p["clients"] for p in points]
            for target in ("tfsgate", "triton"):
                for quantile, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
                    name = "tfsgate" if target == "tfsgate" else "Triton"
                    ax.plot(
                        clients,
                        [p[target][quantile] for p in points],
                        style,
                        color=colors[target],
                        label=f"{name} {quantile[:3]}",
                    )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(clients, [str(c) for c in clients])
            ax.set_title(f"{protocol_name(kind)}: latency (ms)")
            ax.set_xlabel("concurrent clients")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        made["sweep_latency"] = _save(fig, directory / "sweep_latency.png")

        fig, ax = plt.subplots(figsize=(6, 4))
        for kind, color in (("rest", "tab:blue"), ("grpc", "tab:orange")):
            points = sweep.get(kind, [])
            ax.plot(
                [p["clients"] for p in points],
                [p["tfsgate"]["gateway_cpu_us"] for p in points],
                "o-",
                color=color,
                label=f"{protocol_name(kind)} gateway",
            )
            ax.plot(
                [p["clients"] for p in points],
                [p["triton"]["triton_cpu_us"] for p in points],
                "x:",
                color=color,
                label=f"Triton direct {protocol_name(kind)} (Triton's own)",
            )
        ax.axhline(80, color="tab:blue", lw=0.8, ls="--")
        ax.axhline(120, color="tab:orange", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_title("CPU per request (us); dashed: targets at 16 clients")
        ax.set_xlabel("concurrent clients")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        made["cpu"] = _save(fig, directory / "cpu_per_request.png")

    if "mlp" in results:
        mlp = results["mlp"]
        labels, values, bar_colors = [], [], []
        for batching, section in (("on", mlp), ("off", mlp.get("batching_off", {}))):
            for kind in ("rest", "grpc"):
                for target in ("tfsgate", "triton"):
                    if kind in section:
                        name = "tfsgate" if target == "tfsgate" else "Triton"
                        labels.append(f"{name}\n{protocol_name(kind)}\nbatch {batching}")
                        values.append(section[kind][target]["rps"])
                        bar_colors.append(colors[target])
        if "naive" in mlp:
            labels.append("naive\nFastAPI+TF")
            values.append(mlp["naive"]["rps"])
            bar_colors.append("tab:red")
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.bar(range(len(values)), values, color=bar_colors)
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_title(f"MLP 3x1024, {mlp['clients']} clients: requests/s")
        ax.grid(axis="y", alpha=0.3)
        made["mlp"] = _save(fig, directory / "mlp.png")

    if results.get("payload"):
        rows = results["payload"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        sizes = [r["bytes"] for r in rows]
        for kind, style in (("rest", "o-"), ("grpc", "s--")):
            for target in ("tfsgate", "triton"):
                name = "tfsgate" if target == "tfsgate" else "Triton"
                axes[0].plot(
                    sizes,
                    [r[kind][target]["rps"] for r in rows],
                    style,
                    color=colors[target],
                    label=f"{name} {protocol_name(kind)}",
                )
                axes[1].plot(
                    sizes,
                    [r[kind][target]["p50_ms"] for r in rows],
                    style,
                    color=colors[target],
                    label=f"{name} {protocol_name(kind)}",
                )
        for ax, title in zip(axes, ("requests/s", "p50 latency (ms)"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("tensor bytes (float32)")
            ax.set_title(f"payload size: {title}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        made["payload"] = _save(fig, directory / "payload.png")
    return made


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
