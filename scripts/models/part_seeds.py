"""Initial weights that do not depend on construction order (docs/design.md, "Adding a part").

A model draws one number from torch's RNG (so `torch.manual_seed` still chooses its weights) and builds
each part from a generator seeded by that number and the part's name: a part added, switched on or off,
or built in another order leaves every other part's initial weights as they were, and torch's RNG
advances by that one draw whatever the parts are, so batch order and dropout stay as they were too.
"""
from __future__ import annotations

import contextlib
import zlib
from typing import Callable, Iterator, TypeVar

import torch

Part = TypeVar("Part")
_MIX = 0x9E3779B97F4A7C15  # spreads the names' CRCs over the seed space (the golden-ratio constant)


class PartSeeds:
    """`seeds.build("blocks.0.tcc", lambda: TemporalConditionedConv(...))`: the part's initial weights
    come from the name alone (and the one draw at construction)."""

    def __init__(self):
        self.base = int(torch.randint(0, 2**62, (1,), device="cpu"))  # device: also under torch.device("meta")

    def seed(self, name: str) -> int:
        return (self.base + zlib.crc32(name.encode()) * _MIX) % 2**63

    def build(self, name: str, make: Callable[[], Part]) -> Part:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed(name))
            return make()

    @staticmethod
    @contextlib.contextmanager
    def isolated() -> Iterator[None]:
        """Anything built inside draws nothing from torch's RNG as the caller sees it (a part someone
        builds without `build` cannot move the RNG state of what runs after the model is made)."""
        with torch.random.fork_rng(devices=[]):
            yield
