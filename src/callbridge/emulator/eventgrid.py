"""Event Grid webhook delivery of IncomingCall, including the validation handshake.

Public reference: https://learn.microsoft.com/azure/event-grid/webhook-event-delivery
and https://learn.microsoft.com/azure/communication-services/concepts/call-automation/incoming-call-notification
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp

from .events import subscription_validation_event
from .report import WebhookDelivery

log = logging.getLogger("callbridge.emulator")
SUBSCRIPTION_NAME = "CALLBRIDGE-EMULATOR"  # observed upper-cased in aeg-subscription-name
DELIVERY_TIMEOUT_S = 30.0  # Event Grid waits 30 s for the webhook
VALIDATION_ORIGIN = "eventgrid.azure.net"


class WebhookValidationError(RuntimeError):
    """The webhook did not complete the subscription validation handshake."""


def _excerpt(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


class EventGridDelivery:
    def __init__(self, session: aiohttp.ClientSession, schema: str) -> None:
        if schema not in ("eventgrid", "cloudevents"):
            raise ValueError("event_schema must be 'eventgrid' or 'cloudevents'")
        self._session = session
        self.schema = schema
        self.validated_url: str | None = None

    async def validate(self, url: str) -> None:
        """Run the handshake for ``url`` (once per URL); raise with what the webhook said."""
        if self.validated_url == url:
            return
        if self.schema == "eventgrid":
            await self._validate_eventgrid(url)
        else:
            await self._validate_cloudevents(url)
        self.validated_url = url

    async def _validate_eventgrid(self, url: str) -> None:
        # POST [validation event]; require 200 + {"validationResponse": code}.
        event, code = subscription_validation_event()
        headers = self._headers("SubscriptionValidation", 0, "application/json")
        headers["aeg-data-version"] = "1"
        try:
            async with self._session.post(
                url, data=json.dumps([event]), headers=headers, timeout=self._timeout()
            ) as resp:
                status, text = resp.status, await resp.text(errors="replace")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise WebhookValidationError(
                f"Event Grid validation POST to {url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        answer: Any = None
        try:
            answer = json.loads(text)
        except ValueError:
            pass
        got = answer.get("validationResponse") if isinstance(answer, dict) else None
        if status != 200 or got != code:
            raise WebhookValidationError(
                f"Event Grid validation failed: webhook {url} answered HTTP {status} with body "
                f"{_excerpt(text)!r}; expected HTTP 200 and "
                f'{{"validationResponse": "{code}"}}'
            )

    async def _validate_cloudevents(self, url: str) -> None:
        # CloudEvents abuse-protection preflight (OPTIONS with WebHook-Request-Origin).
        headers = {"WebHook-Request-Origin": VALIDATION_ORIGIN, "WebHook-Request-Rate": "120"}
        try:
            async with self._session.options(url, headers=headers, timeout=self._timeout()) as resp:
                status = resp.status
                allowed = resp.headers.get("WebHook-Allowed-Origin")
                text = await resp.text(errors="replace")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise WebhookValidationError(
                f"CloudEvents validation OPTIONS to {url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if status != 200 or allowed not in (VALIDATION_ORIGIN, "*"):
            raise WebhookValidationError(
                f"CloudEvents validation failed: webhook {url} answered OPTIONS with HTTP "
                f"{status}, WebHook-Allowed-Origin={allowed!r}, body {_excerpt(text)!r}; "
                f"expected HTTP 200 with WebHook-Allowed-Origin: {VALIDATION_ORIGIN} (or *)"
            )

    async def deliver(
        self, url: str, event: dict[str, Any], delivery_count: int
    ) -> WebhookDelivery:
        if self.schema == "eventgrid":
            body = json.dumps([event])  # Event Grid schema: always an array
            headers = self._headers("Notification", delivery_count, "application/json")
        else:
            # The single-event CloudEvents delivery shape is unconfirmed: this sends
            # application/cloudevents+json with a bare object (structured mode), see
            # "Choices where the reference is unconfirmed" in docs/emulator.md.
            body = json.dumps(event)
            headers = self._headers("Notification", delivery_count, "application/cloudevents+json")
            headers["Origin"] = VALIDATION_ORIGIN
        start = time.monotonic()
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout()
            ) as resp:
                await resp.read()
                status: int | None = resp.status
                error = None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            log.warning("IncomingCall delivery to %s failed: %s", url, error)
        elapsed = (time.monotonic() - start) * 1000.0
        return WebhookDelivery(delivery_count, status, round(elapsed, 1), error)

    @staticmethod
    def _timeout() -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S)

    @staticmethod
    def _headers(event_type: str, delivery_count: int, content_type: str) -> dict[str, str]:
        # The aeg-* headers Event Grid adds to every delivery.
        return {
            "Content-Type": content_type,
            "aeg-event-type": event_type,
            "aeg-subscription-name": SUBSCRIPTION_NAME,
            "aeg-delivery-count": str(delivery_count),
            "aeg-data-version": "1.0",
            "aeg-metadata-version": "1",
        }
