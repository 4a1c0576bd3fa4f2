import time

import pytest

from callbridge.telephony.acs.call_tokens import CallTokens, TokenError


def test_valid_callback_token_verifies_repeatedly() -> None:
    tokens = CallTokens("k" * 32)
    tok = tokens.mint("call1", "callback", 60)
    for _ in range(3):
        assert tokens.verify(tok, "call1", "callback").call_id == "call1"


def test_media_token_works_once() -> None:
    tokens = CallTokens("k" * 32)
    tok = tokens.mint("call1", "media", 60)
    tokens.verify(tok, "call1", "media")
    with pytest.raises(TokenError, match="already used"):
        tokens.verify(tok, "call1", "media")


def test_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = CallTokens("k" * 32)
    tok = tokens.mint("call1", "media", 30)
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 31)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(tok, "call1", "media")


def test_forged_tokens_are_refused() -> None:
    ours, theirs = CallTokens("k" * 32), CallTokens("x" * 32)
    with pytest.raises(TokenError, match="bad signature"):
        ours.verify(theirs.mint("call1", "callback", 60), "call1", "callback")
    tok = ours.mint("call1", "callback", 60)
    body, sig = tok.split(".")
    with pytest.raises(TokenError, match="bad signature"):
        ours.verify(body[:-2] + "AA." + sig, "call1", "callback")
    with pytest.raises(TokenError, match="bad signature"):
        ours.verify("garbage", "call1", "callback")


def test_missing_token_and_wrong_call_or_purpose() -> None:
    tokens = CallTokens("k" * 32)
    with pytest.raises(TokenError, match="no token"):
        tokens.verify(None, "call1", "media")
    tok = tokens.mint("call1", "callback", 60)
    with pytest.raises(TokenError, match="another call"):
        tokens.verify(tok, "call2", "callback")
    with pytest.raises(TokenError, match="not media"):
        tokens.verify(tok, "call1", "media")
