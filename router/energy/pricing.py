"""Money for remote models from litellm's bundled price map (never fetched from the network).

litellm downloads its price map at import unless ``LITELLM_LOCAL_MODEL_COST_MAP=True``, so the
variable is set right before the lazy import. Importing litellm takes seconds: ``warm()`` lets the app
pay that at start-up instead of on the first large request.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)


class PriceBook:
    """USD for a request to a litellm model; ``None`` when litellm has no price for it."""

    def __init__(self) -> None:
        self._litellm: Any = None
        self._lock = threading.Lock()
        self._unpriced: set[str] = set()
        self._rates: dict[str, tuple[float, float]] = {}  # USD per prompt / output token, for flat-priced models

    def warm(self) -> None:
        """Import litellm now (offline price map)."""
        self._module()

    def version(self) -> str:
        """The litellm version whose price map is used."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("litellm")
        except PackageNotFoundError:
            return "not installed"

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for these tokens, or ``None`` when the model has no price in litellm's map."""
        if model in self._unpriced:
            return None
        rates = self._rates.get(model)
        if rates is not None:  # litellm's lookup costs ~65 µs a call; a flat price is two multiplications
            return max(0, prompt_tokens) * rates[0] + max(0, completion_tokens) * rates[1]
        litellm = self._module()
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model, prompt_tokens=max(0, prompt_tokens), completion_tokens=max(0, completion_tokens)
            )
        except Exception as exc:  # noqa: BLE001 - litellm raises many unrelated types for an unknown model
            log.warning("no litellm price for model %r (%s); cost counted as unknown", model, type(exc).__name__)
            self._unpriced.add(model)
            return None
        self._remember_rates(litellm, model)
        return float(prompt_cost) + float(completion_cost)

    def _remember_rates(self, litellm: Any, model: str) -> None:
        """Cache the per-token prices of a model whose price does not change with the prompt's length."""
        try:
            info = litellm.get_model_info(model)
            if any("above" in key and value for key, value in info.items()):
                return  # tiered pricing (e.g. above 128k tokens): ask litellm every time
            per_prompt = litellm.cost_per_token(model=model, prompt_tokens=1, completion_tokens=0)
            per_output = litellm.cost_per_token(model=model, prompt_tokens=0, completion_tokens=1)
        except Exception:  # noqa: BLE001 - no cache, the exact lookup stays
            return
        self._rates[model] = (float(sum(per_prompt)), float(sum(per_output)))

    def _module(self) -> Any:
        if self._litellm is None:
            with self._lock:
                if self._litellm is None:
                    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
                    import litellm

                    self._litellm = litellm
        return self._litellm
