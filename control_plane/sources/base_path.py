"""Version discovery under a model base path (TF Serving's file-system storage path source).

A base path holds one child directory per version, named by its number: ``/models/m/123`` and
``/models/m/00000123`` are both version 123. Names follow TF Serving's ``ParseVersionNumber``
(``strings::safe_strto64`` in ``file_system_storage_path_source.cc``): optional surrounding
whitespace, an optional ``-``, decimal digits, within int64; anything else (``tmp``, ``123abc``,
``.123``) is ignored. Negative numbers parse in TF Serving but cannot be Triton versions, so they
are ignored here.

tfsgate adds a readiness rule TF Serving lacks: a version counts only once it holds
``saved_model.pb`` (or ``saved_model.pbtxt``; with ``--prefer_tflite_model`` also ``model.tflite``),
so a directory still being copied is not offered for loading (TF Serving would aspire it and fail
the load).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

SAVED_MODEL_FILENAMES = ("saved_model.pb", "saved_model.pbtxt")
TFLITE_FILENAME = "model.tflite"

_INT64_MAX = 2**63 - 1
# C isspace() in the "C" locale, which safe_strto64 skips on both sides.
_C_SPACE = " \t\n\v\f\r"
_SIGNED_DIGITS = re.compile(r"-?[0-9]+")


class SourceError(Exception):
    """A base path cannot be read (missing, not a directory, permission denied)."""


def parse_version(name: str) -> int | None:
    """Parse a version directory name; ``None`` when it is not a non-negative int64."""
    text = name.strip(_C_SPACE)
    if not _SIGNED_DIGITS.fullmatch(text):
        return None
    value = int(text)
    if value < 0 or value > _INT64_MAX:
        return None
    return value


def is_ready_version_dir(path: Path, tflite: bool = False) -> bool:
    """True when ``path`` is a directory holding a SavedModel graph file (or, ``tflite``, a
    TFLite model)."""
    names = (*SAVED_MODEL_FILENAMES, TFLITE_FILENAME) if tflite else SAVED_MODEL_FILENAMES
    return path.is_dir() and any((path / name).is_file() for name in names)


def discover_versions(
    base_path: Path, *, model_name: str | None = None, tflite: bool = False
) -> dict[int, Path]:
    """Return ready versions under ``base_path``, number to version directory.

    Raises :class:`SourceError` when the base path does not exist or cannot be listed; TF
    Serving likewise refuses to emit an empty version list for a missing base path, so callers
    should keep their previous view in that case. When two names give one number (``123`` and
    ``0123``) the later name in sorted order wins, with a warning, as in TF Serving's
    ``IndexChildrenByVersion``.
    """
    children = _list_children(base_path, model_name)
    found: dict[int, Path] = {}
    for child in sorted(children, key=lambda p: p.name):
        version = parse_version(child.name)
        if version is None or not is_ready_version_dir(child, tflite):
            continue
        if version in found:
            logger.warning(
                "Duplicate version directories detected. Version %d will be loaded from %s, "
                "%s will be ignored.",
                version,
                child.name,
                found[version].name,
            )
        found[version] = child
    return found


def no_versions_message(model_name: str, base_path: Path | str) -> str:
    """TF Serving's warning when a policy selects nothing under a base path."""
    return f"No versions of servable {model_name} found under base path {base_path}"


def missing_base_path_message(model_name: str | None, base_path: Path | str) -> str:
    """TF Serving's wording for a missing base path, plus the plain reason."""
    servable = f" for servable {model_name}" if model_name else ""
    return f"Could not find base path {base_path}{servable}: the base path does not exist"


def _list_children(base_path: Path, model_name: str | None) -> list[Path]:
    if not base_path.exists():
        raise SourceError(missing_base_path_message(model_name, base_path))
    if not base_path.is_dir():
        raise SourceError(f"Base path {base_path} is not a directory")
    try:
        return list(base_path.iterdir())
    except OSError as exc:
        raise SourceError(f"Cannot list base path {base_path}: {exc.strerror or exc}") from exc
