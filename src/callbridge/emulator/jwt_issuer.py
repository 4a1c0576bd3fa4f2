"""Signs the bearer tokens ACS puts on callbacks and on the media WebSocket.

Real ACS: RS256, issuer https://acscallautomation.communication.azure.com, JWKS at
/calling/keys, audience = the ACS resource's immutable id, 5 min lifetime for callbacks,
24 h for the media socket, a fresh token every time. Public reference:
https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/secure-webhook-endpoint
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_ISSUER = "https://acscallautomation.communication.azure.com"
# A fixed GUID so a service config can default to it; the real one is the ACS resource's
# immutable resource id.
DEFAULT_RESOURCE_ID = "4f4c9b7e-2d1a-4c55-9e0b-ac5e0e111a7c"
CALLBACK_TOKEN_LIFETIME_S = 5 * 60
MEDIA_TOKEN_LIFETIME_S = 24 * 3600


class JwtIssuer:
    """An RSA-2048 key (made once per emulator) and the tokens/JWKS derived from it."""

    def __init__(self, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_RESOURCE_ID) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = uuid.uuid4().hex
        # Key generation takes ~50-100 ms; callers on the event loop build this in a thread.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "RS256",
                    "n": jwk["n"],
                    "e": jwk["e"],
                }
            ]
        }

    def openid_configuration(self, jwks_uri: str) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": jwks_uri}

    def mint(self, lifetime_s: int, *, audience: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience or self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def callback_token(self) -> str:
        return self.mint(CALLBACK_TOKEN_LIFETIME_S)

    def media_token(self) -> str:
        return self.mint(MEDIA_TOKEN_LIFETIME_S)
