"""How a model config field is declared once, with everything the scripts derive from it (docs/design.md,
"Adding a part"): its help text, its command-line spelling, the values it accepts, the options group it
is listed in, and what the published architecture (paper_fast, paper_base) does with it.

    use_tcc: bool = option(True, "the temporal-conditioned convolution", flag="no_tcc", group=PARTS)

From such fields scripts/option.py builds the model flags and their help, scripts/models/config.py
checks values, maps flags to fields and fixes what the published variants cannot change; the checkpoint
stores every field (scripts/models/history.py says since when). Nothing else lists field names.
"""
from __future__ import annotations

import dataclasses
from dataclasses import Field
from typing import Any

from scripts.core.errors import MateError

MODEL, SIZES, PARTS, LOSS = "model", "sizes", "parts", "loss"  # the options groups of --help
USES, IGNORES = "uses", "ignores"  # what the published architecture does with a field (else: fixes it)
_FIXED = object()  # paper_value not given: the published architecture has the field's default


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple | None = None,
           minimum: float | None = None, below: float | None = None, group: str = MODEL,
           paper: str | None = None, paper_value: Any = _FIXED, cli: bool = True) -> Field:
    """A config field with what the scripts derive from it.

    Args:
        default: the value of the reference variant (fast; MilConfig: mil).
        help (str): what it does, for --help (the default is added there).
        flag (str): the command-line name (and config-file key) when not the field's name; a bool field
            that is on by default is switched off by its flag, so it is spelled `no_<part>`.
        choices (tuple): the values a str field accepts.
        minimum, below (float): an int or float must be >= minimum and (below) < below.
        group (str): MODEL, SIZES or PARTS, the --help group.
        paper (str): USES: the published architecture reads it (a variant value may change it); IGNORES: it
            has no such part and no value matters. Neither: it has the value `paper_value` (default: the
            field's default) and paper_* refuse any other, so a new part is off in the published variants.
        cli (bool): False for the fields no flag sets (the variant's name, the features' channels).
    """
    metadata = dict(help=help, flag=flag, choices=choices, minimum=minimum, below=below, group=group,
                    paper=paper, paper_value=paper_value, cli=cli)
    return dataclasses.field(default=default, metadata=metadata)


def kind(f: Field) -> str:
    """bool, int, float or str: the field's annotation (a string under `from __future__ import annotations`)."""
    name = f.type if isinstance(f.type, str) else f.type.__name__
    assert name in ("bool", "int", "float", "str"), f"config field {f.name} has type {name}: plain values only"
    return name


def flag_name(f: Field) -> str | None:
    """The command-line flag (without --) that sets the field; None for the fields no flag sets."""
    if not f.metadata.get("cli", True):
        return None
    name = f.metadata.get("flag") or f.name
    if kind(f) == "bool" and f.default is True:
        assert name.startswith("no_"), f"{f.name} is on by default: its flag switches it off, so it is no_<part>"
    return name


def negates(f: Field) -> bool:
    """Whether the field's flag is a switch that turns it off (--no_tcc sets use_tcc False)."""
    return kind(f) == "bool" and f.default is True


def paper_rule(f: Field) -> tuple[str, Any]:
    """(USES | IGNORES | "fixed", the fixed value) for the published architecture."""
    rule = f.metadata.get("paper")
    if rule in (USES, IGNORES) or not f.metadata.get("cli", True):
        return (rule or USES), None
    value = f.metadata.get("paper_value", _FIXED)
    return "fixed", (f.default if value is _FIXED else value)


def check_fields(cfg: Any, what: str = "model config") -> None:
    """Each field's value against its declaration; a fault is a MateError naming the key."""
    for f in dataclasses.fields(cfg):
        value, meta, type_ = getattr(cfg, f.name), f.metadata, kind(f)

        def fault(expected: str) -> MateError:
            flag = flag_name(f)  # the flag too: a user sets the value there or in a config
            return MateError(f"{what}: {f.name} must be {expected}, got {value!r}" + (f" (--{flag})" if flag else ""))

        if type_ == "bool" and not isinstance(value, bool):
            raise fault("true or false")
        if type_ == "str" and not isinstance(value, str):
            raise fault("a string")
        if type_ in ("int", "float"):
            number = (int,) if type_ == "int" else (int, float)
            minimum, below = meta.get("minimum"), meta.get("below")
            wanted = "an integer" if type_ == "int" else "a number"
            if minimum is not None:
                wanted = ("a positive integer" if (type_, minimum) == ("int", 1) else
                          f"an integer >= {minimum}" if type_ == "int" else
                          f"a number >= {minimum:g}" if below is None else f"in [{minimum:g}, {below:g})")
            if isinstance(value, bool) or not isinstance(value, number) or value != value:
                raise fault(wanted)
            if (minimum is not None and value < minimum) or (below is not None and value >= below):
                raise fault(wanted)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise fault("one of " + ", ".join(map(str, choices)))
