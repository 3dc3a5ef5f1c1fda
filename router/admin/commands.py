"""What the ``frugal thresholds set|history`` and ``frugal calibrate`` commands do, without the typer layer.

The CLI writes to the ledger database directly (actor ``cli:$USER``); running servers pick the change up
within their poll interval.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from router.admin.calibration import CalibrationRequest, run_calibration
from router.admin.persistence import Change, ThresholdSync, open_ledger
from router.core.errors import UnprocessableError
from router.core.policy import all_specs
from router.thresholds import ThresholdStore


def cli_actor() -> str:
    """``cli:<login name>`` for the audit trail."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` arguments as a mapping (values are validated by the store)."""
    parsed: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UnprocessableError(f"expected NAME=VALUE, got {item!r} (e.g. route.large=0.3)", param="thresholds")
        parsed[name.strip()] = value.strip()
    return parsed


def _sync(settings: Any) -> ThresholdSync:
    sync = ThresholdSync(open_ledger(settings), ThresholdStore(all_specs(), settings.thresholds),
                         settings.thresholds_poll_s)
    try:
        sync.load()
    except BaseException:
        sync.ledger.close()
        raise
    return sync


def set_thresholds(settings: Any, assignments: list[str], reason: str) -> Change:
    """Validate and persist ``NAME=VALUE`` changes as one audited version."""
    changes = parse_assignments(assignments)
    if not reason.strip():
        raise UnprocessableError("give a --reason: it is kept in the audit trail", param="reason")
    sync = _sync(settings)
    try:
        return sync.apply(changes, actor=cli_actor(), reason=reason.strip())
    finally:
        sync.ledger.close()


def threshold_history(settings: Any, limit: int) -> list[Change]:
    """The most recent changes, newest first."""
    ledger = open_ledger(settings)
    try:
        return ledger.threshold_history(limit)
    finally:
        ledger.close()


def calibrate(settings: Any, job: CalibrationRequest, *, apply: bool, reason: str | None) -> dict[str, Any]:
    """Run a calibration against the configured classifier and ledger; apply it when asked."""
    from router.energy.estimator import EnergyEstimator
    from router.services import prepare_environment

    prepare_environment()
    classifier = None
    if job.mode() == "labelled":
        from classifiers import load_classifier

        classifier = load_classifier(settings.classifier)
    sync = _sync(settings)
    try:
        result = run_calibration(job, classifier=classifier, ledger=sync.ledger,
                                 estimator=EnergyEstimator(settings.resolved_energy()), current=sync.store.values())
        result["applied"] = None
        if apply:
            change = sync.apply(result["thresholds"], actor=cli_actor(), reason=reason or f"calibrate ({result['mode']})")
            result["applied"] = change.to_dict()
        return result
    finally:
        sync.ledger.close()
