"""Which tiers may answer a request, given what it needs and what each tier honours (``router.core.capabilities``).

The dispatcher asks three questions of this module: may a forced tier answer (else a 400 naming the
capability and the tier that could), which tier does an automatic request start on (the decided tier if it
can honour the request, else the cheapest capable tier above it, else the nearest below), and where does an
escalation go (the next capable tier up the chain). Tiers without a runner are not capable of anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.core import RANK, TIERS, Tier
from router.core.capabilities import NEUTRAL_PARAMS, missing_message, ordered, param_of
from router.core.errors import CapabilityError

if TYPE_CHECKING:
    from router.tier_runner import TierRunner


class CapabilityRouting:
    """The capability rule over one set of tier runners and escalation chain."""

    def __init__(self, tiers: Mapping[str, TierRunner], next_tier: Mapping[Tier, Tier | None]) -> None:
        self.tiers = tiers
        self.next_tier = next_tier

    def honours(self, tier: Tier, needs: frozenset[str]) -> bool:
        """Whether ``tier`` has a runner that honours ``needs``."""
        runner = self.tiers.get(tier)
        return runner is not None and needs <= runner.capabilities

    def check_forced(self, tier: Tier, needs: frozenset[str]) -> None:
        """400 when a forced tier that exists cannot honour the request (a missing tier is the 503 path's)."""
        runner = self.tiers.get(tier)
        if runner is None or needs <= runner.capabilities:
            return
        missing = needs - runner.capabilities
        capable = [t for t in TIERS if self.honours(t, needs)]
        could = f" (here: the {' or '.join(capable)} tier)" if capable else ""
        raise CapabilityError(missing_message(missing, f"the {tier} tier ({runner.name})")
                              + f"; ask for frugal-auto to be routed to a tier that can{could}", param=param_of(missing))

    def capable(self, needs: frozenset[str]) -> list[Tier]:
        """The tiers that honour ``needs``, cheapest first; a 400 listing what each tier lacks when there is none."""
        capable = [t for t in TIERS if self.honours(t, needs)]
        if needs and not capable:
            lacking = [f"{t} lacks {', '.join(ordered(needs - runner.capabilities))}"
                       for t, runner in self.tiers.items() if not needs <= runner.capabilities]
            raise CapabilityError(missing_message(needs, "no configured tier") + f" [{'; '.join(lacking)}]",
                                  param=param_of(needs))
        return capable

    @staticmethod
    def only_choice(needs: frozenset[str], capable: list[Tier], question: str) -> tuple[Tier, str] | None:
        """(tier, reason) when what the request needs leaves one tier, or it holds no text to classify (media only)."""
        if not needs:
            return None
        names = ", ".join(ordered(needs))
        if len(capable) == 1:
            return capable[0], f"the request needs {names}, which only the {capable[0]} tier honours"
        if not question.strip():
            return capable[0], f"the request needs {names} and holds no text to classify: the cheapest tier that honours it"
        return None

    def start(self, tier: Tier, needs: frozenset[str], reason: str) -> tuple[Tier, str, bool]:
        """The tier an automatic request starts on, its reason, and whether the rule moved it; 400 when none can."""
        if not needs:
            return tier, reason, False
        capable = self.capable(needs)
        if tier in capable:
            return tier, reason, False
        above = [t for t in capable if RANK[t] >= RANK[tier]]
        moved = above[0] if above else capable[-1]
        return moved, (f"{reason}; the request needs {', '.join(ordered(needs))}, which the {tier} tier cannot "
                       f"honour: sent to the {moved} tier"), True

    def ignored_params(self, tier: Tier, params: Mapping[str, object]) -> list[str]:
        """The client's fields that ``tier`` did not apply (``frugal.ignored_params``); none for a pass-through tier."""
        applied = self.tiers[tier].backend.applied_params()
        if applied is None:
            return []
        return sorted(name for name in params if name not in applied and name not in NEUTRAL_PARAMS)

    def next_capable(self, tier: Tier, needs: frozenset[str]) -> Tier | None:
        """The next tier up the escalation chain that honours ``needs`` (a tier without a runner counts as one:
        it is then skipped as unavailable, as before)."""
        following = self.next_tier[tier]
        while following is not None and needs and following in self.tiers and not self.honours(following, needs):
            following = self.next_tier[following]
        return following
