"""The image's HEALTHCHECK: exit 0 when the site's health endpoint answers 200.

It talks to gunicorn directly, where paths arrive as Nginx forwards them: with the event's prefix
already stripped, so the public <prefix>/healthz is /healthz here.
"""

import os
import sys
import urllib.error
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"health check {url}: {exc}", file=sys.stderr)
    sys.exit(1)
