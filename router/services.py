"""Everything a running Frugal needs, built from settings in one place (the app's lifespan or the CLI).

Heavy parts (the classifier's encoder, the llama.cpp model, the index, database connections) are built
here and nowhere at import time. A tier whose backend fails to build is logged and left out: the other
tiers still serve, and ``/healthz`` says what is missing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.registry import build_backend
from router.auth import KeyChecker
from router.core import TIERS, Backend
from router.core.capabilities import ordered
from router.core.policy import all_specs
from router.dispatcher import DISABLED, Dispatcher
from router.limits import DegradedBudget
from router.settings import Settings, SettingsError
from router.stickiness import AnswerMemory
from router.thresholds import ThresholdStore
from router.tier_runner import HealthMonitor, TierRunner

if TYPE_CHECKING:
    from router.energy.estimator import EnergyEstimator
    from router.ledger.interface import LedgerStore
    from router.limits import Limits
    from router.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The built components of one Frugal instance."""

    settings: Settings
    thresholds: ThresholdStore
    classifier: Any
    backends: dict[str, Backend]
    estimator: EnergyEstimator
    ledger: LedgerStore
    metrics: Metrics
    dispatcher: Dispatcher
    keys: KeyChecker
    problems: dict[str, str] = field(default_factory=dict)
    limits: Limits | None = None

    @property
    def health_monitor(self) -> HealthMonitor:
        """Probes every tier in the background (started by the app's lifespan)."""
        return HealthMonitor(self.dispatcher.tiers)

    async def health(self) -> dict[str, Any]:
        """Readiness of every tier, the classifier and the ledger."""
        tiers: dict[str, Any] = {}
        for tier in TIERS:
            runner = self.dispatcher.tiers.get(tier)
            if runner is None:
                tiers[tier] = {"ready": False, "backend": None, "detail": self.problems.get(tier, "not configured")}
                continue
            state = await runner.probe()  # fresh, and the routing sees the same answer
            tiers[tier] = {"ready": state.ready, "backend": runner.name, "detail": state.detail,
                           "warming": state.warming, "capabilities": ordered(runner.capabilities)}
        ready = [t for t, s in tiers.items() if s["ready"]]
        status = "ok" if len(ready) == len(TIERS) else ("degraded" if ready else "down")
        if any(s.get("warming") for s in tiers.values()):
            status = "warming"
        ledger = self._ledger_state()
        if status == "ok" and ledger.get("status") in ("corrupt", "stalled"):  # answering, rows spooled: alert
            status = "degraded"
        return {
            "status": status,
            "tiers": tiers,
            "classifier": {"ready": self.classifier is not None, "detail": self.problems.get("classifier", "")},
            "on_large_unavailable": self.settings.on_large_unavailable,
            "ledger": ledger,
        }

    async def warm_up(self) -> None:
        """Load every tier's backend (the small model above all) so that no request waits for a load."""

        async def start(tier: str, backend: Backend) -> None:
            started = time.monotonic()
            try:
                await backend.start()
            except Exception as exc:  # noqa: BLE001 - the tier reports it in /healthz; the others still start
                log.error("the %s tier could not start: %s", tier, exc)
            state = await backend.health()
            log.info("%s tier: %s in %.1f s (%s)", tier, "ready" if state.ready else "not ready",
                     time.monotonic() - started, state.detail or backend.name)

        await asyncio.gather(*(start(tier, backend) for tier, backend in self.backends.items()))
        for runner in self.dispatcher.tiers.values():  # requests see the loaded tiers at once, not at the next probe
            await runner.probe()

    def _ledger_state(self) -> dict[str, Any]:
        """Whether ledger rows are being spooled locally because the database is unavailable."""
        state = getattr(self.ledger, "state", None)
        return state() if callable(state) else {"status": "ok", "spooling": False, "spooled_rows": 0}

    async def aclose(self) -> None:
        """Release backends and the ledger."""
        for backend in self.backends.values():
            try:
                await backend.aclose()
            except Exception:  # closing must not mask other shutdown work
                log.warning("closing the %s backend failed", backend.name, exc_info=True)
        self.ledger.close()


def prepare_environment() -> None:
    """Keep model libraries offline: no hub lookups, litellm's bundled price map."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_services(settings: Settings, *, load_classifier: bool = True) -> Services:
    """Build every component from ``settings``."""
    from classifiers import load_classifier as load
    from router.accounting import Accounting
    from router.core.policy import Policy
    from router.energy.estimator import EnergyEstimator
    from router.ledger.spool import SpooledLedger
    from router.ledger.store import Ledger
    from router.limits import Limits
    from router.metrics import Metrics
    from router.recording import RequestRecorder

    prepare_environment()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    problems: dict[str, str] = {}
    thresholds = ThresholdStore(all_specs(), settings.thresholds)
    classifier = None
    if load_classifier:
        classifier = load(settings.classifier)
    backends = build_backends(settings, problems)
    estimator = EnergyEstimator(settings.resolved_energy())
    estimator.warm()
    ledger: LedgerStore = Ledger.open(settings.resolved_ledger_url())
    estimator.remember(ledger)
    ledger = SpooledLedger(ledger, settings.data_dir, write_timeout_s=settings.ledger.write_timeout_s,
                           spool=settings.ledger_spool)
    metrics = Metrics()
    metrics.watch_ledger(ledger.state)
    limits = Limits.from_settings(settings, metrics.registry)
    configs = settings.tier_configs()
    runners = {tier: TierRunner(tier, backend, timeout_s=configs[tier].timeout_s,  # type: ignore[arg-type]
                                limiter=limits.tiers.get(tier), metrics=metrics)
               for tier, backend in backends.items()}
    dispatcher = Dispatcher(
        classifier=classifier, policy_factory=functools.partial(Policy, objective=settings.policy.objective),
        thresholds=thresholds, tiers=runners,
        accounting=Accounting(estimator), recorder=RequestRecorder(ledger, metrics, store_text=settings.store_text),
        max_escalations=settings.max_escalations, search_escalates_to=settings.search_escalates_to,
        on_large_unavailable=settings.on_large_unavailable, overflow=limits.overflow,
        degraded_budget=DegradedBudget(settings.limits.degraded_max_tokens, settings.limits.degraded_timeout_s),
        unbuilt=problems,
        memory=AnswerMemory(settings.policy.answer_memory) if settings.policy.sticky_conversations else None,
    )
    return Services(settings=settings, thresholds=thresholds, classifier=classifier, backends=backends,
                    estimator=estimator, ledger=ledger, metrics=metrics, dispatcher=dispatcher,
                    keys=KeyChecker(settings.auth), problems=problems, limits=limits)


def build_backends(settings: Settings, problems: dict[str, str]) -> dict[str, Backend]:
    """Build each enabled tier's backend; a tier that fails to build is reported, not fatal."""
    backends: dict[str, Backend] = {}
    for tier, config in settings.tier_configs().items():
        if not config.enabled:
            problems[tier] = DISABLED
            continue
        try:
            backends[tier] = build_backend(config.backend, config, tier=tier, data_dir=settings.data_dir)  # type: ignore[arg-type]
        except ValueError as exc:  # a configuration mistake: refuse to start, naming the setting
            raise SettingsError(f"{tier} tier ({config.backend}): {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - one broken tier must not stop the others
            log.error("the %s tier (%s) could not be built: %s", tier, config.backend, exc)
            problems[tier] = f"{config.backend}: {exc}"
    return backends
