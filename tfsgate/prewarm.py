"""Start-up work begun before the server's own modules are imported: the export child, Triton.

On a fresh home every version is converted before it serves (``control_plane/converter``), and
the export child's TensorFlow and tf2onnx imports (3-5 s) are most of that cold start. Started
here, before ``tfsgate serve`` imports its server (1.5-2 s), the two run on the machine's cores
side by side. A restart finds its models converted and starts no child.

The embedded Triton is spawned here too, so its own start (ready in about a second, with an empty
repository in explicit mode) overlaps those imports instead of following them; the control plane
waits for it to be ready where it would have started it. A start-up that fails its checks
after this stops it (``tfsgate/server.py``), and it dies with this process in any case
(PR_SET_PDEATHSIG). Only ``tfsgate serve``: a ``tfsgate control-plane`` starts Triton once it
leads, which a standby may never do.
"""

from __future__ import annotations

from pathlib import Path

from control_plane.converter.exporter import TENSORFLOW, Exporter
from control_plane.triton.embedded import EmbeddedTriton
from tfsgate.settings import ServeSettings


def _has_models(repository: Path) -> bool:
    try:
        return any(p.is_dir() and not p.name.startswith(".") for p in repository.iterdir())
    except OSError:  # not made yet: a fresh home
        return False


def started_exporter(settings: ServeSettings) -> Exporter | None:
    """The export child, already starting, when this start-up will convert models; else None
    (nothing to serve yet, every model forced to TensorFlow, TFLite preferred, or a repository
    that already holds converted models). Unused, it leaves when idle like any export child."""
    if not (settings.model_base_path or settings.model_config_file):
        return None
    if settings.runner == TENSORFLOW or settings.prefer_tflite_model:
        return None
    if _has_models(settings.repository_path):
        return None
    exporter = Exporter()
    exporter.start()
    return exporter


def started_triton(settings: ServeSettings) -> EmbeddedTriton | None:
    """The embedded Triton, spawned (not yet ready: ``wait_ready``) unless ``--triton_url``
    names the Tritons to use."""
    if settings.triton_urls:
        return None
    triton = embedded_triton(settings)
    triton.start()
    return triton


def embedded_triton(settings: ServeSettings) -> EmbeddedTriton:
    """The embedded Triton the flags ask for (the control plane's, when none was started ahead)."""
    settings.home_path.mkdir(parents=True, exist_ok=True)
    return EmbeddedTriton(
        settings.repository_path, settings.home_path, cache_bytes=settings.response_cache_bytes
    )
