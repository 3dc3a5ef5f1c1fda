"""Model names a client may ask for: ``frugal-auto``, the forced tiers, and configured aliases."""

from __future__ import annotations

from collections.abc import Mapping

from router.core import Tier
from router.core.errors import ModelNotFoundError
from router.settings import FRUGAL_MODELS


def model_names(aliases: Mapping[str, str]) -> list[str]:
    """Every name ``/v1/chat/completions`` accepts, built-ins first."""
    return list(FRUGAL_MODELS) + sorted(aliases)


def resolve_model(name: str, aliases: Mapping[str, str]) -> tuple[str, Tier | None]:
    """Map a requested model name to its Frugal model and forced tier (None = route automatically)."""
    canonical = aliases.get(name, name)
    if canonical not in FRUGAL_MODELS:
        raise ModelNotFoundError(
            f"The model {name!r} does not exist. Valid models: {', '.join(model_names(aliases))}", param="model"
        )
    tier = FRUGAL_MODELS[canonical]
    return canonical, tier  # type: ignore[return-value]
