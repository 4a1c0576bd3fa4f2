"""The admin token that guards the records API and the console.

Browsers cannot put a header on `<audio src>` or `EventSource`, so the token is also
accepted as `?token=`. Without CALLBRIDGE_ADMIN_TOKEN everything behind this check is
off (503): call records are personal data, and an open console is worse than none.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

DISABLED = (
    "The records API and console are disabled: set CALLBRIDGE_ADMIN_TOKEN to a secret of at "
    "least 16 characters and restart (`callbridge dev` sets one and prints it)."
)
MISSING = (
    "This needs the admin token: send 'Authorization: Bearer <token>' "
    "(or add ?token=<token> to the URL for audio and event streams)."
)
WRONG = "The admin token is wrong."

_bearer = HTTPBearer(auto_error=False, description="CALLBRIDGE_ADMIN_TOKEN")
_query = APIKeyQuery(
    name="token", auto_error=False, description="CALLBRIDGE_ADMIN_TOKEN, for <audio> and SSE"
)


class AdminAuth:
    """Checks a request's admin token against the configured one."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check(self, supplied: str | None) -> None:
        if self._token is None:
            raise HTTPException(503, DISABLED)
        if not supplied:
            raise HTTPException(401, MISSING, headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(supplied.encode(), self._token):
            raise HTTPException(401, WRONG, headers={"WWW-Authenticate": "Bearer"})


async def require_admin(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_query)],
) -> None:
    """FastAPI dependency for any route behind the admin token (reads app.state.admin_auth,
    which callbridge.api.records installs)."""
    auth: AdminAuth | None = getattr(request.app.state, "admin_auth", None)
    if auth is None:
        raise HTTPException(503, DISABLED)
    auth.check(bearer.credentials if bearer is not None else token)
