"""The checkpoint format's history as one table: which model-config keys each format added, removed or
renamed, and the value an older file gets for an added key (docs/design.md, "Adding a part").

A checkpoint's `format` is the number of the last row it knows; today's format is the highest row's
(`current_format`). Loading an older file applies the rows after its format, in order
(scripts/models/checkpoint.py: read_format), so it needs no migration code of its own. A new config field
is a new row: tests/test_checkpoint.py fails while a field of MateConfig or MilConfig is neither in the
oldest format nor added by a row, so a forgotten row is a red test, not an unreadable user checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

MATE, MIL = "mate", "mil"  # the config families: MateConfig (fast, base, paper_*) and MilConfig (mil)


def family(variant: Any) -> str:
    return MIL if variant == "mil" else MATE


@dataclass(frozen=True)
class Change:
    """One row: from format `format` on, configs of `family` have `key` changed by `change`:
    added (older files get `value`), removed (dropped from older files) or renamed (to `value`)."""
    format: int
    family: str
    change: str  # added | removed | renamed
    key: str
    value: Any = None
    why: str = ""

    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        config = dict(config)
        if self.change == "added":
            config.setdefault(self.key, self.value)
        elif self.change == "removed":
            config.pop(self.key, None)
        elif self.key in config:
            assert self.change == "renamed", f"unknown change {self.change!r}"
            config[self.value] = config.pop(self.key)
        return config


# The model-config keys of format 1 (no "format" key in the file): one MateConfig for every variant, the
# MIL baseline's sizes included as mil_hidden and mil_embed.
_FORMAT_1 = ("variant", "in_channels", "dim", "num_blocks", "num_heads", "motion_window", "use_motion_map",
             "use_attention", "use_tcc", "tcc_mode", "tcc_bottleneck", "use_motion_pooling", "num_queries",
             "spatial_window", "ff_mult", "head_hidden", "snippet_hidden", "dropout", "input_norm", "video_logit",
             "mil_hidden", "mil_embed")
OLDEST: Mapping[str, tuple[str, ...]] = {MATE: _FORMAT_1, MIL: _FORMAT_1}

_SPLIT = "the MIL baseline got its own config (MilConfig); MATE's keys were unused by it"
HISTORY: list[Change] = [
    Change(2, MATE, "removed", "mil_hidden", why=_SPLIT),
    Change(2, MATE, "removed", "mil_embed", why=_SPLIT),
    Change(2, MIL, "renamed", "mil_hidden", "hidden", why=_SPLIT),
    Change(2, MIL, "renamed", "mil_embed", "embed", why=_SPLIT),
    *(Change(2, MIL, "removed", key, why=_SPLIT)
      for key in _FORMAT_1 if key not in ("variant", "in_channels", "dropout", "mil_hidden", "mil_embed")),
    Change(3, MATE, "added", "use_difference_features", True,
           why="every model before it projected the differences |x_t - x_{t-1}|"),
    Change(4, MATE, "added", "use_temporal_smoothing", False, why="no model before it smoothed over time"),
]


def current_format() -> int:
    """The format save_checkpoint's callers write: the last row's."""
    return max([1] + [row.format for row in HISTORY])


def keys_at(fam: str, version: int | None = None) -> set[str]:
    """The model-config keys of `fam` in format `version` (default: today's), by the table."""
    keys = dict.fromkeys(OLDEST[fam])
    for row in sorted(HISTORY, key=lambda r: r.format):
        if row.family == fam and row.format <= (current_format() if version is None else version):
            keys = row.apply(keys)
    return set(keys)


def migrate(config: dict[str, Any], version: int) -> dict[str, Any]:
    """A model config of format `version` as today's format has it: the rows after `version` applied."""
    fam = family(config.get("variant"))
    for row in sorted(HISTORY, key=lambda r: r.format):
        if row.family == fam and row.format > version:
            config = row.apply(config)
    return config
