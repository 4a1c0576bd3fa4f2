"""Settings from secret files: `CALLBRIDGE_<NAME>_FILE` and the secrets folder (config.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callbridge import config
from callbridge.config import ConfigError, Settings, load_settings

BASE = {
    "acs_connection": "endpoint=http://127.0.0.1:8765/;accesskey=c2VjcmV0",
    "public_url": "http://127.0.0.1:8080/",
}
SECRET = "from-a-file-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CALLBRIDGE_ secret settings from the outside, and no /run/secrets of the machine."""
    for name in list(os.environ):
        if name.startswith("CALLBRIDGE_") and name not in (
            "CALLBRIDGE_DATABASE_URL",
            "CALLBRIDGE_RECORDINGS_DIR",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "DEFAULT_SECRETS_DIR", tmp_path / "no-such-run-secrets")


def load() -> Settings:
    return load_settings(_env_file=None, **BASE)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_file_variable_is_read_without_its_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path / "eg", SECRET + "\n")
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    monkeypatch.setenv(
        "CALLBRIDGE_SIGNING_KEY_FILE", str(write(tmp_path / "sk", "k" * 32 + "\r\n"))
    )
    s = load()
    assert s.eventgrid_secret == SECRET and s.signing_key == "k" * 32


def test_secrets_folder_names_like_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "secrets"
    write(folder / "CALLBRIDGE_EVENTGRID_SECRET", SECRET + "\n")
    # Lower case and dashes too: Container Apps and Kubernetes secret names.
    write(folder / "callbridge-admin-token", "a" * 20)
    write(folder / "callbridge_max_calls", "7\n")
    write(folder / "unrelated.txt", "ignored")
    write(folder / "CALLBRIDGE_NOT_A_SETTING", "ignored")
    write(folder / "kubernetes.io" / "token", "ignored")  # folders are skipped
    write(folder / ".hidden", "ignored")
    monkeypatch.setenv("CALLBRIDGE_SECRETS_DIR", str(folder))
    s = load()
    assert (s.eventgrid_secret, s.admin_token, s.max_calls) == (SECRET, "a" * 20, 7)


def test_run_secrets_is_the_default_folder_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "run-secrets"
    write(folder / "CALLBRIDGE_EVENTGRID_SECRET", SECRET)
    monkeypatch.setattr(config, "DEFAULT_SECRETS_DIR", folder)
    assert load().eventgrid_secret == SECRET


def test_environment_and_file_agreeing_is_fine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET", SECRET)
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(write(tmp_path / "s", SECRET)))
    assert load().eventgrid_secret == SECRET


def test_environment_and_file_differing_stops_the_start_without_showing_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET", "another-secret-0123456789")
    path = write(tmp_path / "s", SECRET)
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    with pytest.raises(ConfigError) as err:
        load()
    text = str(err.value)
    assert "CALLBRIDGE_EVENTGRID_SECRET is set in the environment and in" in text
    assert f"CALLBRIDGE_EVENTGRID_SECRET_FILE={path}" in text and "different values" in text
    assert SECRET not in text and "another-secret" not in text


def test_two_files_differing_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "secrets"
    write(folder / "CALLBRIDGE_EVENTGRID_SECRET", SECRET)
    monkeypatch.setenv("CALLBRIDGE_SECRETS_DIR", str(folder))
    path = write(tmp_path / "other", "other-secret-0123456789")
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    with pytest.raises(ConfigError, match="CALLBRIDGE_EVENTGRID_SECRET differs in"):
        load()


def test_missing_file_says_which(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"EVENTGRID_SECRET_FILE=.*absent: cannot read the file"):
        load()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_says_which(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path / "locked", SECRET)
    path.chmod(0)
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    with pytest.raises(ConfigError, match="cannot read the file: Permission denied"):
        load()


def test_a_folder_given_as_a_file_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="cannot read the file: Is a directory"):
        load()


def test_binary_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "bin"
    path.write_bytes(b"\xff\xfe" * 20)
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load()


def test_missing_secrets_folder_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBRIDGE_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"CALLBRIDGE_SECRETS_DIR=.*nowhere is not a readable"):
        load()


def test_file_values_are_validated_like_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(write(tmp_path / "s", "short\n")))
    with pytest.raises(ConfigError, match="CALLBRIDGE_EVENTGRID_SECRET String should have"):
        load()


def test_values_given_in_code_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET", SECRET)
    monkeypatch.setenv("CALLBRIDGE_PORT_FILE", str(write(tmp_path / "port", "9000\n")))
    assert load().port == 9000
    assert load_settings(_env_file=None, **BASE, port=9100).port == 9100


def test_dotenv_file_variable_and_conflict(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path / "s", SECRET)
    env_file = write(tmp_path / ".env", f"CALLBRIDGE_EVENTGRID_SECRET_FILE={path}\n")
    assert load_settings(_env_file=env_file, **BASE).eventgrid_secret == SECRET
    env_file = write(tmp_path / ".env", "CALLBRIDGE_EVENTGRID_SECRET=another-secret-0123456\n")
    monkeypatch.setenv("CALLBRIDGE_EVENTGRID_SECRET_FILE", str(path))
    with pytest.raises(ConfigError, match="different values"):
        load_settings(_env_file=env_file, **BASE)
