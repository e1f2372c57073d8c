"""Triton model names derived from (TF model, signature): stable and filesystem-safe."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
SEPARATOR = "__"
_MAX_PART = 60


def _safe(part: str) -> str:
    cleaned = _UNSAFE.sub("_", part)
    if cleaned == part and SEPARATOR not in part and len(part) <= _MAX_PART and part[:1] != ".":
        return part
    # Anything rewritten gets a hash of the original so two names never collide.
    digest = hashlib.sha1(part.encode()).hexdigest()[:8]
    return f"{cleaned.replace(SEPARATOR, '_')[:_MAX_PART].lstrip('.')}-{digest}"


def triton_model_name(model: str, signature: str) -> str:
    """``half_plus_two`` + ``serving_default`` -> ``half_plus_two__serving_default``."""
    return f"{_safe(model)}{SEPARATOR}{_safe(signature)}"
