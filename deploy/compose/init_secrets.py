"""Make the Compose stack's secrets once, as files in a volume (compose.yaml, secrets-init).

Each CALLBRIDGE_<NAME> file is read by the service as that setting (the secrets folder,
README "Configuration"); the other files are for the emulator and PostgreSQL. Files already
there are kept, so the stack keeps its secrets across `docker compose up` runs.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

SERVICE_UID = 10001  # the image's callbridge user
POSTGRES = "postgres-password"
EMULATOR_KEY = "emulator-access-key"


def main(folder: str) -> int:
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)

    def keep_or_make(name: str, make: str, mode: int = 0o400) -> str:
        path = root / name
        if not path.exists():
            path.write_text(make + "\n")
        os.chown(path, SERVICE_UID, SERVICE_UID)
        path.chmod(mode)
        return path.read_text().rstrip("\n")

    key = keep_or_make(EMULATOR_KEY, base64.b64encode(secrets.token_bytes(32)).decode())
    # PostgreSQL's entrypoint reads it as its own user: readable by all in this volume.
    password = keep_or_make(POSTGRES, secrets.token_hex(16), mode=0o444)
    keep_or_make("CALLBRIDGE_ACS_CONNECTION", f"endpoint=http://lb:8765/;accesskey={key}")
    keep_or_make(
        "CALLBRIDGE_DATABASE_URL",
        f"postgresql+asyncpg://callbridge:{password}@postgres:5432/callbridge",
    )
    keep_or_make("CALLBRIDGE_EVENTGRID_SECRET", secrets.token_urlsafe(24))
    keep_or_make("CALLBRIDGE_SIGNING_KEY", secrets.token_urlsafe(32))
    token = keep_or_make("CALLBRIDGE_ADMIN_TOKEN", secrets.token_urlsafe(18))
    print(f"secrets ready in {root}; console: http://localhost:8080/console  token: {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/run/secrets"))
