"""Triton model names derived from (TF model, signature): stable and filesystem-safe.

A signature runs either in a Triton model of its own (``<model>__<signature>``) or in one of the
model's two shared Triton models (``<model>`` for batched signatures, ``<model>__.unbatched`` for the
others: one python-backend stub per version for every signature that ONNX Runtime serves on a CPU
Triton), where its tensors carry the prefix ``<signature>/``. A safe part never contains the
separator, so no shared name equals a per-signature one.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
SEPARATOR = "__"
_MAX_PART = 60


def safe_part(part: str) -> str:
    """``part`` unchanged when it is a safe file name without the separator, else rewritten
    with a hash of the original."""
    cleaned = _UNSAFE.sub("_", part)
    if cleaned == part and SEPARATOR not in part and len(part) <= _MAX_PART and part[:1] != ".":
        return part
    # Anything rewritten gets a hash of the original so two names never collide.
    digest = hashlib.sha1(part.encode()).hexdigest()[:8]
    return f"{cleaned.replace(SEPARATOR, '_')[:_MAX_PART].lstrip('.')}-{digest}"


def triton_model_name(model: str, signature: str) -> str:
    """``half_plus_two`` + ``serving_default`` -> ``half_plus_two__serving_default``."""
    return f"{safe_part(model)}{SEPARATOR}{safe_part(signature)}"


def shared_model_name(model: str, batched: bool = True) -> str:
    """``half_plus_two`` -> ``half_plus_two``: the Triton model serving the model's batched
    signatures together; ``half_plus_two__.unbatched`` for its unbatched ones (one config has
    one max_batch_size). A safe part never starts with ".", so no signature takes that name."""
    return safe_part(model) if batched else f"{safe_part(model)}{SEPARATOR}.unbatched"


def is_shared(model: str, name: str) -> bool:
    """Whether Triton model ``name`` is one of ``model``'s shared ones."""
    return name in (shared_model_name(model), shared_model_name(model, batched=False))


def belongs_to(model: str, name: str) -> bool:
    """Whether Triton model ``name`` serves signatures of ``model``: its shared models and those
    of its signatures (not a GPU ensemble's steps, ``<model>__<signature>__parse``)."""
    own = safe_part(model)
    rest = name[len(own) + len(SEPARATOR) :]
    return name == own or (name.startswith(own + SEPARATOR) and SEPARATOR not in rest)


def tensor_prefix(signature: str) -> str:
    """What a signature's tensor names carry inside a shared Triton model."""
    return f"{signature}/"
