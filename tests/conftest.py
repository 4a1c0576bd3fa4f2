"""Every test's service keeps its records and recordings in a temporary folder, never in
the working tree (set before any test builds settings)."""

from __future__ import annotations

import os
import tempfile

_ROOT = tempfile.mkdtemp(prefix="callbridge-tests-")
os.environ.setdefault("CALLBRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{_ROOT}/callbridge.db")
os.environ.setdefault("CALLBRIDGE_RECORDINGS_DIR", os.path.join(_ROOT, "recordings"))
