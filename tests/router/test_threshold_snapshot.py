"""A request reads one threshold snapshot: an admin change landing mid-request never mixes old and new values."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from router.accounting import RoutedRequest
from router.core import Backend, Completion, CompletionRequest, Message, Passage, Source
from router.core.policy import Policy
from router.dispatcher import Dispatcher
from router.services import build_services
from router.thresholds import ThresholdStore
from router.tier_runner import TierRunner
from tests.conftest import echo_settings

NEW = {"route.search": 0.99, "small.min_confidence": 0.9}


@dataclass
class FixedScores:
    """A classifier that always predicts the same scores (the policy, not the model, is under test)."""

    scores: Mapping[str, float]

    def predict(self, messages: list[Message]) -> FixedScores:
        return self


class ChangesThresholds(Backend):
    """A search tier during whose answer an admin changes the thresholds; its answer is not sufficient."""

    def __init__(self, store: ThresholdStore) -> None:
        super().__init__(tier="search", name="changes-thresholds")
        self.store = store

    async def complete(self, request: CompletionRequest) -> Completion:
        if self.store.values()["route.search"] != NEW["route.search"]:
            self.store.update(NEW)  # the admin's change lands while this request is in flight
        return Completion(text="not it", model="search", sufficient=False, confidence=0.1, cpu_seconds=0.0,
                          passages=[Passage("a passage", Source("doc"))])


class RecordsGate(Backend):
    """A small tier that remembers the gate threshold each request carried."""

    def __init__(self) -> None:
        super().__init__(tier="small", name="records-gate")
        self.seen: list[float | None] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.seen.append(request.min_confidence)
        return Completion(text="answer", model="small", cpu_seconds=0.0)


def routed(n: int) -> RoutedRequest:
    return RoutedRequest(f"req-{n}", "frugal-auto", None, CompletionRequest([Message("user", "Who wrote Emma?")]))


def test_a_threshold_change_mid_request_does_not_mix_values(tmp_path: Path) -> None:
    services = build_services(echo_settings(tmp_path), load_classifier=False)
    store = services.thresholds
    old_gate = store.values()["small.min_confidence"]
    assert store.values()["route.search"] < 0.6 < NEW["route.search"] and old_gate != NEW["small.min_confidence"]
    small = RecordsGate()
    search = ChangesThresholds(store)
    dispatcher = Dispatcher(
        classifier=FixedScores({"search": 0.6, "small": 0.3, "large": 0.1}), policy_factory=Policy, thresholds=store,
        tiers={"search": TierRunner("search", search), "small": TierRunner("small", small)},
        accounting=services.dispatcher.accounting, recorder=services.dispatcher.recorder, search_escalates_to="small",
    )
    try:
        first = asyncio.run(dispatcher.answer(routed(1)))
        # decided with the old route.search (0.6 >= old), gated with the old small.min_confidence
        assert [a.tier for a in first.attempts] == ["search", "small"] and small.seen == [old_gate]
        second = asyncio.run(dispatcher.answer(routed(2)))
        # the next request sees the new values: 0.6 < 0.99 sends it straight to small, gated at 0.9
        assert [a.tier for a in second.attempts] == ["small"] and small.seen == [old_gate, NEW["small.min_confidence"]]
    finally:
        asyncio.run(services.aclose())
