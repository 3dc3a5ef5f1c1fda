"""Frugal's core: the types every layer shares, and nothing else of the project.

``backends`` and ``classifiers`` import only this package; the rest of ``router`` builds on it. It imports
no other module of ours (``tests/test_architecture.py`` keeps that true). Submodules: ``tiers`` (the tier
names, once), ``types`` (messages, requests, completions), ``backend`` (the Backend contract), ``errors``
(the one exception tree), ``estimate`` (energy ranges), ``policy`` (the routing rule and the thresholds),
``assets`` (model files from PyPI packages, sha256-verified).
"""

from router.core.backend import Backend, Health
from router.core.tiers import NEXT_TIER, RANK, TIERS, Tier
from router.core.types import (
    Completion,
    CompletionRequest,
    Evidence,
    Message,
    Passage,
    Source,
    StreamEvent,
    TextDelta,
)

__all__ = [
    "NEXT_TIER", "RANK", "TIERS", "Backend", "Completion", "CompletionRequest", "Evidence", "Health", "Message", "Passage",
    "Source", "StreamEvent", "TextDelta", "Tier",
]
