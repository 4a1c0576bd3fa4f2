"""The console's static files: a fixed set read once, served with ETags.

Only files found in `static/` at start are served (no path from the URL ever reaches the
file system), and the pages name them with a content hash so a new release is never mixed
with a cached old script.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(folder: Path = STATIC_DIR) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        media_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        assets[path.name] = Asset(
            body,
            media_type or "application/octet-stream",
            '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
        )
    return assets


def bundle_version(assets: dict[str, Asset]) -> str:
    """One hash over every file: changes whenever any script or style does."""
    digest = hashlib.sha256()
    for name, asset in sorted(assets.items()):
        digest.update(name.encode() + asset.etag.encode())
    return digest.hexdigest()[:12]
