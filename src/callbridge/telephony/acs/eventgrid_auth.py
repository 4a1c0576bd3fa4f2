"""Who may deliver to /acs/incoming: the shared secret, an Entra ID token, or both.

With Entra ID (Azure AD) delivery authentication, Event Grid gets a token for the app
registration named on the subscription (`azureActiveDirectoryApplicationIdOrUri`) and sends
it as `Authorization: Bearer <JWT>` with every delivery, the validation handshake included
(https://learn.microsoft.com/azure/event-grid/secure-webhook-delivery). The token is an
RS256 access token of the subscription's tenant: v1 tokens are issued by
`https://sts.windows.net/{tenant}/`, v2 tokens by
`https://login.microsoftonline.com/{tenant}/v2.0`; the audience is the application id or
its Application ID URI; the keys are those of the tenant's OpenID configuration
(https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from callbridge.config import Settings
from callbridge.telephony.acs.acs_jwt import JwksCache, JwtError, bearer_token
from callbridge.telephony.acs.jws import TokenError

log = logging.getLogger(__name__)

ENTRA_AUTHORITY = "https://login.microsoftonline.com"


def openid_config_url(tenant_id: str) -> str:
    return f"{ENTRA_AUTHORITY}/{tenant_id}/v2.0/.well-known/openid-configuration"


def entra_issuers(tenant_id: str) -> tuple[str, str]:
    """The issuers of the tenant's v2 and v1 access tokens."""
    return f"{ENTRA_AUTHORITY}/{tenant_id}/v2.0", f"https://sts.windows.net/{tenant_id}/"


class EntraTokenVerifier:
    """Verifies the Entra ID access tokens Event Grid sends with each delivery."""

    def __init__(
        self,
        tenant_id: str,
        audiences: tuple[str, ...],
        *,
        openid_url: str | None = None,
        role: str | None = None,
        leeway_s: float = 60.0,
        refetch_min_interval_s: float = 30.0,
    ) -> None:
        if not audiences:
            raise ValueError("at least one audience is needed")
        self._issuers = entra_issuers(tenant_id)
        self._audiences = list(audiences)
        self._role = role
        self._leeway = leeway_s
        self._keys = JwksCache(
            openid_url or openid_config_url(tenant_id),
            discovery=True,
            refetch_min_interval_s=refetch_min_interval_s,
        )

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        """Check an `Authorization: Bearer <jwt>` header value; return the claims."""
        token, kid = bearer_token(authorization)  # RS256 only: no "none", no HS256
        key = await self._keys.key(kid)
        if key is None:
            raise JwtError(f"unknown signing key {kid!r}")
        try:
            # Two accepted issuers: the tenant's v1 and v2 tokens.
            claims = token.verify(
                key, issuers=self._issuers, audiences=self._audiences, leeway_s=self._leeway
            )
        except TokenError as exc:
            raise JwtError(str(exc)) from None
        # The app role the webhook's app registration gives Event Grid's service principal;
        # without it any client of the tenant could get a token for the audience.
        roles = claims.get("roles")
        if self._role and not (isinstance(roles, list) and self._role in roles):
            raise JwtError(f"the token does not carry the app role {self._role!r}")
        return claims


class EventGridAuth:
    """The webhook's check: the shared secret (query `key`, `X-Callbridge-Key` or a bearer
    value), and/or an Entra ID token, whichever are configured. Either one is enough."""

    def __init__(self, secret: str | None, entra: EntraTokenVerifier | None) -> None:
        if not secret and entra is None:
            raise ValueError("neither a delivery secret nor Entra ID is configured")
        self._secret = secret.encode("utf-8") if secret else None
        self._entra = entra

    @classmethod
    def from_settings(cls, settings: Settings) -> EventGridAuth:
        entra = None
        if settings.eventgrid_entra and settings.eventgrid_entra_tenant_id:
            entra = EntraTokenVerifier(
                settings.eventgrid_entra_tenant_id,
                settings.eventgrid_entra_audiences,
                openid_url=settings.eventgrid_entra_openid_url,
                role=settings.eventgrid_entra_role,
            )
        return cls(settings.eventgrid_secret, entra)

    async def refusal(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """None when the delivery may go on, else why it may not (for the log)."""
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        reasons = []
        if self._secret is not None:
            offered = query.get("key") or headers.get("x-callbridge-key") or bearer
            if hmac.compare_digest(offered.encode("utf-8"), self._secret):
                return None
            reasons.append("wrong delivery key" if offered else "no delivery key")
        if self._entra is not None:
            try:
                await self._entra.verify(auth)
                return None
            except JwtError as exc:
                reasons.append(f"Entra token refused: {exc}")
        return "; ".join(reasons)
