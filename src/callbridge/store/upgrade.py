"""`python -m callbridge.store.upgrade`: bring the records database to the newest schema
and exit (status 1 and the reason on stderr if it cannot).

`callbridge serve` runs this in a child process when the schema is behind (store/sql.py,
`_migrate`): Alembic, Mako and Pygments are ~11 MB that an upgrade in the service itself
would hold for the life of the process (docs/architecture.md, "Memory"). The URL comes in
the environment (`UPGRADE_URL_ENV`), not on the command line, where `ps` shows passwords.
"""

from __future__ import annotations

import asyncio
import os
import sys

from callbridge.store import migrate
from callbridge.store.sql import UPGRADE_URL_ENV, first_line, records_engine


async def _upgrade(url: str) -> None:
    engine = records_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def main() -> int:
    url = os.environ.get(UPGRADE_URL_ENV)
    if not url:
        print(f"callbridge: {UPGRADE_URL_ENV} is not set", file=sys.stderr)
        return 2
    try:
        asyncio.run(_upgrade(url))
    except Exception as exc:  # any failure: the service upgrades in-process and reports it
        print(f"callbridge: schema upgrade failed: {first_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
