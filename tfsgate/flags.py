"""``tensorflow_model_server``'s flags as ``tfsgate serve`` reads them.

The flags themselves are the fields of :class:`tfsgate.settings.ServeSettings`: each carries its
default (TF Serving's, from ``model_servers/main.cc`` and ``server.h``), what tfsgate does with it,
and whether TF Serving knows it. The CLI builds its parser from those fields, ``docs/flags.md`` is
rendered from them (``python -m tfsgate.flagdoc``), and start-up reports the accepted flags that
change nothing here, so all three always agree.

Parsing follows TensorFlow's ``Flags::Parse`` (``xla/tsl/util/command_line_flags.cc``): values
are given as ``--flag=value``; a bool is ``--flag``, ``--flag=true|false|1|0`` (case-insensitive);
an int is a whole decimal number; a bad value is "Couldn't interpret value V for flag F." and the
binary exits with -1 (status 255). TF Serving prints "unknown argument" for a flag it does not
know and goes on; tfsgate refuses it (a typo would otherwise silently change nothing).
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import Field
from pydantic.fields import FieldInfo

FLAG_ERROR_EXIT = 255  # main() returns -1 when Flags::Parse fails
_INT = re.compile(r"\s*[+-]?\d+")
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class Treatment(enum.Enum):
    """What ``tfsgate serve`` does with a flag."""

    HONOURED = "honoured"
    PARTLY = "partly honoured"
    NO_EFFECT = "accepted, no effect"
    OWN = "tfsgate's own"


@dataclass(frozen=True)
class FlagMeta:
    treatment: Treatment
    effect: str  # what tfsgate does with it, one sentence for the docs table
    tf_default: str | None  # TF Serving's default as its usage text shows it, when ours differs


def flag(
    default: Any,
    effect: str,
    *,
    treatment: Treatment = Treatment.HONOURED,
    tf_default: str | None = None,
    aliases: Sequence[str] = (),
    **kwargs: Any,
) -> Any:
    """A ``ServeSettings`` field that is one of ``tensorflow_model_server``'s flags.

    ``aliases`` are further flag names for it (older tfsgate names)."""
    extra: dict[str, Any] = {"treatment": treatment.value, "effect": effect}
    if tf_default is not None:
        extra["tf_default"] = tf_default
    if aliases:
        extra["flag_aliases"] = list(aliases)
    return Field(default, description=effect, json_schema_extra=extra, **kwargs)


def own_flag(default: Any, effect: str, *, repeatable: bool = False, **kwargs: Any) -> Any:
    """A ``ServeSettings`` field that only tfsgate has; a ``repeatable`` string flag may be given
    several times, its values joined with commas."""
    extra: dict[str, Any] = {"treatment": Treatment.OWN.value, "effect": effect}
    if repeatable:
        extra["repeatable"] = True
    return Field(default, description=effect, json_schema_extra=extra, **kwargs)


def meta(field: FieldInfo) -> FlagMeta:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    treatment = Treatment(extra.get("treatment", Treatment.OWN.value))
    tf_default = extra.get("tf_default")
    return FlagMeta(
        treatment=treatment,
        effect=str(extra.get("effect", field.description or "")),
        tf_default=str(tf_default) if tf_default is not None else None,
    )


def flag_kind(field: FieldInfo) -> type:
    annotation = field.annotation
    if annotation in (bool, int, float):
        return annotation  # type: ignore[return-value]
    return str


def show_default(field: FieldInfo) -> str:
    """A default as TF's usage text writes it (``true``, ``8500``, ``""``)."""
    value = field.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


# -- values, as TensorFlow's flag parser reads them --------------------------------------------


class FlagValueError(ValueError):
    pass


def parse_bool(text: str) -> bool:
    """``ParseBoolFlag``: true/false in any case, or 1/0."""
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise FlagValueError(text)


def parse_int(text: str) -> int:
    """``sscanf("%d%c")`` must read exactly the number (leading blanks allowed)."""
    if not _INT.fullmatch(text):
        raise FlagValueError(text)
    return int(text)


def parse_float(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise FlagValueError(text)
    return float(text)


_PARSERS: dict[type, Callable[[str], Any]] = {
    bool: parse_bool,
    int: parse_int,
    float: parse_float,
    str: str,
}


class _Value(argparse.Action):
    """Stores a parsed value; a bad one is TF's "Couldn't interpret value" error."""

    kind: type = str
    repeatable = False

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values is None:  # a bare bool flag
            setattr(namespace, self.dest, True)
            return
        try:
            value = _PARSERS[self.kind](values)
            earlier = getattr(namespace, self.dest, None)
            if self.repeatable and earlier:
                value = f"{earlier},{value}"
            setattr(namespace, self.dest, value)
        except FlagValueError:
            parser.error(f"Couldn't interpret value {values} for flag {self.dest}.")


class FlagParser(argparse.ArgumentParser):
    """argparse with TF's exit status and without prefix matching (TF matches whole names)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            message = "".join(f"unknown argument: {arg}\n" for arg in unknown.group(1).split())
            message += (
                "neither tensorflow_model_server nor tfsgate has this flag; "
                f"{self.prog} --help lists them"
            )
        sys.stderr.write(f"{message.rstrip()}\n")
        sys.exit(FLAG_ERROR_EXIT)


def add_flags(parser: argparse.ArgumentParser, fields: Mapping[str, FieldInfo]) -> None:
    """One option per field (plus its aliases), every value parsed the way TF parses it."""
    for name, field in fields.items():
        kind = flag_kind(field)
        help_text = f"{field.description or ''} (default {show_default(field)})"
        if meta(field).treatment is Treatment.NO_EFFECT:
            help_text = f"[no effect in tfsgate] {help_text}"
        parser.add_argument(
            f"--{name}",
            *(f"--{alias}" for alias in aliases(field)),
            dest=name,
            action=type(
                f"_{kind.__name__.title()}Value",
                (_Value,),
                {"kind": kind, "repeatable": repeatable(field)},
            ),
            nargs="?" if kind is bool else None,
            metavar=kind.__name__.upper(),
            default=None,
            help=help_text.replace("%", "%%"),
        )


def repeatable(field: FieldInfo) -> bool:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return bool(extra.get("repeatable", False))


def aliases(field: FieldInfo) -> list[str]:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    names = extra.get("flag_aliases", ())
    return [str(a) for a in names] if isinstance(names, list | tuple) else []


def given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The flags present on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def without_effect(fields: Mapping[str, FieldInfo], set_names: Iterable[str]) -> list[str]:
    """The set flags that change nothing in tfsgate, for the one start-up report."""
    return sorted(
        name
        for name in set_names
        if name in fields and meta(fields[name]).treatment is Treatment.NO_EFFECT
    )
