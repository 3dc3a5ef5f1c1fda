"""Energy, carbon and cost estimates for every route and for the all-large counterfactual."""

from router.energy.estimate import Estimate, Range

__all__ = ["Estimate", "Range"]
