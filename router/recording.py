"""One ledger row and one metrics observation per request: answered, failed, or abandoned by its client.

Kept apart from the dispatcher so that routing reads as routing; every path through the pipeline ends
here, which is what makes "the ledger never loses a row for a request that was answered" checkable in
one place.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from router.accounting import Attempt, Decision, Outcome, RoutedRequest, spent
from router.core.errors import FrugalError
from router.core.estimate import Estimate
from router.ledger.row import LedgerRow, unreturned_energy

if TYPE_CHECKING:
    from router.metrics import Metrics

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's code for "client closed the request", recorded in the ledger only


class RowWriter(Protocol):
    """What the recorder needs of a ledger (``router.ledger.spool.SpooledLedger``): write a row, waiting or not."""

    async def arecord(self, row: LedgerRow, *, durable: bool = True) -> None:
        """Write a row; ``durable``: return once it is committed (or spooled)."""
        ...

    def record_later(self, row: LedgerRow) -> None:
        """Queue a row for the next commit without waiting (a request that was not answered)."""
        ...


class RequestRecorder:
    """Writes each request's ledger row and counts it in the metrics."""

    def __init__(self, ledger: RowWriter, metrics: Metrics, *, store_text: bool = False) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.store_text = store_text

    async def answered(self, routed: RoutedRequest, outcome: Outcome, *, latency_ms: float) -> None:
        """Record an answered request (the ledger write happens before the answer is sent)."""
        row = _row(routed, status=200, attempts=outcome.attempts)
        row.latency_ms = latency_ms
        row.route = outcome.route
        row.decision_ms = outcome.decision_ms
        _fill_scores(row, outcome.scores)
        row.apply_estimates(outcome.estimate, outcome.counterfactual)
        row.escalation_energy_wh = unreturned_energy(row.route, row.attempts)
        row.cpu_energy_wh = outcome.cpu_energy_wh
        row.flags.extend(flag for flag in outcome.flags if flag not in row.flags)  # e.g. objective:energy
        if outcome.degraded:
            row.flags.append(f"degraded:{outcome.degraded}")
        if self.store_text:
            row.prompt_text = routed.completion_request.last_user_text()
            row.answer_text = outcome.completion.text
        await self.ledger.arecord(row)  # committed (or spooled) before the answer is sent
        self.metrics.observe_request(
            route=outcome.route, status=200, escalations=outcome.escalations,
            energy_wh=outcome.estimate.energy_wh.value, avoided_wh=outcome.avoided_wh.value,
            decision_seconds=outcome.decision_ms / 1000, degraded=outcome.degraded,
        )

    async def failed(
        self, routed: RoutedRequest, decision: Decision | None, attempts: list[Attempt], exc: FrugalError,
        started: float,
    ) -> None:
        """Record a request that ended in an error, with the work it did; the error is not held up by the commit."""
        row = _failure_row(routed, decision, attempts, exc.status_code, exc.code, started)
        self.ledger.record_later(row)  # refusing (429) must cost less than answering: no fsync of its own
        self._observe_failure(row)

    def abandoned(
        self, routed: RoutedRequest, decision: Decision | None, attempts: list[Attempt], started: float,
    ) -> None:
        """Record a request whose client disconnected (status 499), without waiting: the task is being cancelled."""
        row = _failure_row(routed, decision, attempts, CLIENT_CLOSED, "client_closed", started)
        self.ledger.record_later(row)
        self._observe_failure(row)

    def _observe_failure(self, row: LedgerRow) -> None:
        self.metrics.observe_request(route=None, status=row.status, escalations=row.escalations,
                                     energy_wh=row.energy_wh, avoided_wh=0.0, decision_seconds=row.decision_ms / 1000)


def _failure_row(
    routed: RoutedRequest, decision: Decision | None, attempts: list[Attempt], status: int, code: str | None,
    started: float,
) -> LedgerRow:
    row = _row(routed, status=status, attempts=attempts)
    row.error_code = code
    row.escalation_energy_wh = unreturned_energy(None, row.attempts)  # no answer was returned: all of it
    row.latency_ms = (time.perf_counter() - started) * 1000
    row.cpu_energy_wh = sum(a.cpu_energy_wh or 0.0 for a in attempts)
    if decision is not None:
        row.first_tier = decision.tier
        row.cpu_energy_wh += decision.cpu_energy_wh
        row.decision_ms = decision.decision_ms
        _fill_scores(row, decision.scores)
        row.apply_estimates(spent(decision, attempts), Estimate.zero())
        row.flags.extend(decision.flags)
    return row


def _row(routed: RoutedRequest, *, status: int, attempts: list[Attempt]) -> LedgerRow:
    real = [a for a in attempts if a.completion is not None]
    return LedgerRow(
        request_id=routed.request_id, created_at=datetime.now(UTC), requested_model=routed.requested_model,
        route=None, forced=routed.forced_tier is not None, status=status, client_key_id=routed.client_key_id,
        escalations=max(0, len(attempts) - 1), attempts=[a.to_dict() for a in attempts],
        first_tier=attempts[0].tier if attempts else None,
        latency_ms=sum(a.latency_ms for a in attempts),
        prompt_tokens=sum(a.completion.prompt_tokens for a in real if a.completion),
        completion_tokens=sum(a.completion.completion_tokens for a in real if a.completion),
    )


def _fill_scores(row: LedgerRow, scores: dict[str, float] | None) -> None:
    if scores:
        row.score_search, row.score_small, row.score_large = scores["search"], scores["small"], scores["large"]
