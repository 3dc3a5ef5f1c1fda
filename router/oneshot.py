"""Run one request through the whole pipeline without a server (``frugal ask``)."""

from __future__ import annotations

import asyncio
import uuid

from router.accounting import Outcome, RoutedRequest
from router.core import CompletionRequest, Message
from router.models import resolve_model
from router.services import build_services
from router.settings import Settings


async def ask_once(settings: Settings, text: str, model: str = "frugal-auto") -> Outcome:
    """Answer ``text`` as a one-message conversation, recording it in the ledger like a served request."""
    _, forced = resolve_model(model, settings.aliases)
    services = await asyncio.to_thread(build_services, settings, load_classifier=forced is None)
    try:
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        request = CompletionRequest(messages=[Message("user", text)], request_id=request_id)
        routed = RoutedRequest(request_id=request_id, requested_model=model, forced_tier=forced,
                               completion_request=request, client_key_id="cli")
        return await services.dispatcher.answer(routed)
    finally:
        await services.aclose()
