"""The application factory: ``create_app(settings)`` builds everything in its lifespan, nothing at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from router import __version__
from router.admin.persistence import start_threshold_sync
from router.admin.routes import dashboard_router
from router.admin.routes import router as admin_router
from router.api.errors import install_error_handlers
from router.api.exposure import KeyGate, gated_paths
from router.api.routes import router as api_router
from router.services import Services, build_services
from router.settings import Settings

#: The environment variable through which ``frugal serve --workers N`` hands its arguments to each worker.
SERVE_ARGUMENTS_ENV = "FRUGAL_SERVE_ARGUMENTS"


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Create the Frugal ASGI app; ``services`` may be given pre-built (tests, benchmarks)."""
    settings.check_safe_bind()  # no admin key: the admin API is served on loopback only

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services if services is not None else await asyncio.to_thread(build_services, settings)
        app.state.services = built
        app.state.threshold_sync = await start_threshold_sync(built)  # persisted thresholds win over config
        # The server accepts connections while the tiers load; /healthz says "warming" (503) until they have.
        # Health is probed in the background from the start, so that no request waits for a probe.
        background = [asyncio.create_task(built.warm_up(), name="frugal-warm-up"),
                      asyncio.create_task(built.health_monitor.run(), name="frugal-health")]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.threshold_sync.stop()
            if services is None:
                await built.aclose()

    app = FastAPI(
        title="Frugal",
        version=__version__,
        summary="OpenAI-compatible router that answers with the cheapest sufficient tier and reports its energy.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    gated = gated_paths(app, settings)
    if gated:  # auth.metrics_require_key / auth.docs_require_key
        app.add_middleware(KeyGate, paths=gated)
    app.include_router(api_router)
    app.include_router(admin_router)
    app.include_router(dashboard_router)
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``frugal serve --workers`` process: the settings its parent loaded, from the same sources.

    The parent passes its config path and command-line overrides in ``FRUGAL_SERVE_ARGUMENTS`` (JSON); the
    environment and the YAML file are the same for every worker, so each loads the same settings.
    """
    import json
    import logging
    import os

    from router.settings import load_settings

    arguments = json.loads(os.environ.get(SERVE_ARGUMENTS_ENV, "{}"))
    logging.basicConfig(level=str(arguments.get("log_level", "info")).upper(),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    config = arguments.get("config")
    settings = load_settings(Path(config) if config else None, **arguments.get("overrides", {}))
    return create_app(settings)
