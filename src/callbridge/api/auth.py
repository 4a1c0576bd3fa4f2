"""The admin token that guards the records API and the console.

The token goes in the `Authorization: Bearer` header. Browsers cannot put a header on
`<audio src>` or `EventSource`, so the two routes they fetch that way (a call's recording
and the live event stream) also take it as `?token=`, and only those: a token in a URL
ends up in histories, access logs and Referer headers, so no other route accepts one
(`require_admin` vs `require_admin_or_url_token`). Without CALLBRIDGE_ADMIN_TOKEN
everything behind this check is off (503): call records are personal data, and an open
console is worse than none.
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
MISSING = "This needs the admin token: send 'Authorization: Bearer <token>'."
MISSING_OR_URL = (
    "This needs the admin token: send 'Authorization: Bearer <token>' "
    "(or add ?token=<token> to the URL, for <audio> and EventSource)."
)
URL_TOKEN_REFUSED = (
    "This route takes the admin token only as 'Authorization: Bearer <token>': ?token= is "
    "accepted only by a call's recording and the live event stream, which browsers fetch "
    "without headers."
)
WRONG = "The admin token is wrong."

_bearer = HTTPBearer(auto_error=False, description="CALLBRIDGE_ADMIN_TOKEN")
_query = APIKeyQuery(
    name="token",
    auto_error=False,
    description="CALLBRIDGE_ADMIN_TOKEN, for <audio src> and EventSource only",
)


class AdminAuth:
    """Checks a request's admin token against the configured one."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check(self, supplied: str | None, missing: str = MISSING) -> None:
        if self._token is None:
            raise HTTPException(503, DISABLED)
        if not supplied:
            raise HTTPException(401, missing, headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(supplied.encode(), self._token):
            raise HTTPException(401, WRONG, headers={"WWW-Authenticate": "Bearer"})


def _auth(request: Request) -> AdminAuth:
    """The app's AdminAuth (app.state.admin_auth, which callbridge.api.records installs)."""
    auth: AdminAuth | None = getattr(request.app.state, "admin_auth", None)
    if auth is None:
        raise HTTPException(503, DISABLED)
    return auth


async def require_admin(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """FastAPI dependency for any route behind the admin token: the header only."""
    auth = _auth(request)
    if bearer is None and "token" in request.query_params:
        auth.check(None, URL_TOKEN_REFUSED)
    auth.check(bearer.credentials if bearer is not None else None)


async def require_admin_or_url_token(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_query)],
) -> None:
    """The same check, also taking `?token=`: only for a route a browser fetches without
    headers (`<audio src>`, `EventSource`)."""
    _auth(request).check(bearer.credentials if bearer is not None else token, MISSING_OR_URL)
