import pytest

from callbridge.config import AcsConnection, ConfigError, load_settings

GOOD = {
    "acs_connection": "endpoint=http://127.0.0.1:8765/;accesskey=c2VjcmV0",
    "public_url": "http://127.0.0.1:8080/",
    "eventgrid_secret": "s" * 20,
}


def test_good_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(**GOOD)
    assert s.acs == AcsConnection("http://127.0.0.1:8765", "c2VjcmV0")
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.sample_rate == 24000
    assert load_settings(**GOOD, audio_format="pcm16KMono").sample_rate == 16000


def test_missing_settings_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACS_CONNECTION", "PUBLIC_URL", "EVENTGRID_SECRET"):
        monkeypatch.delenv(f"CALLBRIDGE_{name}", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    text = str(err.value)
    assert "CALLBRIDGE_ACS_CONNECTION is not set" in text
    assert "CALLBRIDGE_PUBLIC_URL is not set" in text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"acs_connection": "endpoint=ftp://x;accesskey=abc="}, "CALLBRIDGE_ACS_CONNECTION needs"),
        ({"acs_connection": "endpoint=https://x/;accesskey=@@"}, "not valid base64"),
        ({"public_url": "bridge.example.com"}, "CALLBRIDGE_PUBLIC_URL must be"),
        ({"eventgrid_secret": "short"}, "CALLBRIDGE_EVENTGRID_SECRET"),
        ({"audio_format": "pcm8"}, "CALLBRIDGE_AUDIO_FORMAT"),
        ({"acs_jwks_url": "http://127.0.0.1/keys"}, "CALLBRIDGE_ACS_JWT_AUDIENCE is not set"),
    ],
)
def test_wrong_settings_say_what_is_wrong(override: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**{**GOOD, **override})


def test_connection_forms() -> None:
    assert AcsConnection.parse("https://res.communication.azure.com/") == AcsConnection(
        "https://res.communication.azure.com", None
    )
    assert AcsConnection.parse("HTTP://127.0.0.1:1/").endpoint == "http://127.0.0.1:1"


def test_logs_never_show_url_tokens() -> None:
    import logging

    from callbridge.logs import RedactTokens

    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:1", "/acs/media/ab12/eyJjIjoi.sig-_x"),
        None,
    )
    RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:1 - "WebSocket /acs/media/ab12/***" [accepted]'
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "POST /cb?token=abc.def&x=1", (), None
    )
    RedactTokens().filter(record)
    assert record.getMessage() == "POST /cb?token=***&x=1"
