"""Every test's service keeps its records and recordings in a temporary folder, never in
the working tree (set before any test builds settings)."""

from __future__ import annotations

import os
import tempfile

import pytest

_ROOT = tempfile.mkdtemp(prefix="callbridge-tests-")
os.environ.setdefault("CALLBRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{_ROOT}/callbridge.db")
os.environ.setdefault("CALLBRIDGE_RECORDINGS_DIR", os.path.join(_ROOT, "recordings"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-time scenario groups first (minutes of calls, on one worker): the other
    worker takes the rest meanwhile, so the two finish together instead of one waiting on
    a long test started last."""
    items.sort(key=lambda item: 0 if "test_shipped_scenarios" in item.nodeid else 1)
