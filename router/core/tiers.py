"""The tiers, defined once: their names, their order from cheapest to dearest, and where each escalates."""

from __future__ import annotations

from typing import Literal

Tier = Literal["search", "small", "large"]

#: Every tier, cheapest first; adding a tier starts here (docs/ARCHITECTURE.md, "Adding a tier").
TIERS: tuple[Tier, ...] = ("search", "small", "large")

#: A tier's position in ``TIERS`` (0 is the cheapest).
RANK: dict[Tier, int] = {tier: rank for rank, tier in enumerate(TIERS)}

#: Where a tier escalates by default when its answer is not sufficient (settings may move ``search``'s).
NEXT_TIER: dict[Tier, Tier | None] = {"search": "small", "small": "large", "large": None}
