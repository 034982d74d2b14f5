"""Container health check: GET /api/health/ on this container's gunicorn.

Exits 0 when the application answers 200, 1 otherwise. The Host header is the
first of DJANGO_ALLOWED_HOSTS, so Django accepts the request without
"localhost" having to be an allowed host in production. Standard library plus
the project's env helper: the runtime image has no curl.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from anomaly.env import env  # after the path change above


def main() -> int:
    port = env.int("PORT", 8000, minimum=1, maximum=65535)
    hosts = [host.lstrip(".") for host in env.list("DJANGO_ALLOWED_HOSTS", []) if host != "*"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/health/",
        headers={"Host": hosts[0] if hosts else "localhost"},
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            status = response.status
    except OSError as exc:  # refused, timed out, or an HTTP error status
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
