"""The records API (`/api/...`): past calls from the store, live calls from memory.

`Records` (api/records.py) wires the store, analytics, live hub and metrics into an app;
`require_admin` (api/auth.py) guards any route that shows call data (the header only;
`require_admin_or_url_token` also takes `?token=`, for `<audio>` and `EventSource`).
"""

from callbridge.api.auth import AdminAuth, require_admin, require_admin_or_url_token
from callbridge.api.records import Records

__all__ = ["AdminAuth", "Records", "require_admin", "require_admin_or_url_token"]
