"""Value types for energy accounting: a ranged quantity and a per-attempt estimate.

Every energy figure Frugal reports is a range (``value`` with ``min``/``max``) because every method
behind it is an estimate; the range is the honest part.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Range:
    """A central estimate with its lower and upper bounds."""

    value: float
    min: float
    max: float

    @classmethod
    def zero(cls) -> Range:
        """The empty range."""
        return cls(0.0, 0.0, 0.0)

    def __add__(self, other: Range) -> Range:
        return Range(self.value + other.value, self.min + other.min, self.max + other.max)

    def __sub__(self, other: Range) -> Range:
        """Difference with the widest honest bounds (this.min - other.max, this.max - other.min)."""
        return Range(self.value - other.value, self.min - other.max, self.max - other.min)

    def to_dict(self) -> dict[str, float]:
        """The range as ``{"value", "min", "max"}``."""
        return {"value": self.value, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Estimate:
    """Energy (Wh), carbon (gCO2e) and money (USD) for one piece of work, with method flags."""

    energy_wh: Range
    co2e_g: Range
    cost_usd: float = 0.0
    flags: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def zero(cls) -> Estimate:
        """Nothing spent."""
        return cls(Range.zero(), Range.zero(), 0.0, ())

    def __add__(self, other: Estimate) -> Estimate:
        flags = tuple(dict.fromkeys(self.flags + other.flags))
        return Estimate(self.energy_wh + other.energy_wh, self.co2e_g + other.co2e_g, self.cost_usd + other.cost_usd, flags)
