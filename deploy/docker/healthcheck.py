"""The image's HEALTHCHECK: GET /healthz (liveness) on the service's own port.

Exit 0 when it answers 200, 1 otherwise (https://docs.docker.com/reference/dockerfile/#healthcheck).
Standard library only, so the slim image needs no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("CALLBRIDGE_PORT", "8080")
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
