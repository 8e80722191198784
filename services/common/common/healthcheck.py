"""Container health probe without curl: `--url URL` (a 2xx answer) or `--heartbeat` (a fresh file).

    python -m common.healthcheck --url http://127.0.0.1:8080/healthz
    python -m common.healthcheck --heartbeat [--max-age 60]   # reads HEARTBEAT_FILE
"""

import argparse
import os
import sys
import time
import urllib.request


def url_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a local URL we name)
            return 200 <= response.status < 300
    except OSError:
        return False


def heartbeat_age(path: str) -> float | None:
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when the service is healthy.")
    probe = parser.add_mutually_exclusive_group(required=True)
    probe.add_argument("--url", help="healthy when a GET answers 2xx")
    probe.add_argument("--heartbeat", action="store_true", help="healthy when HEARTBEAT_FILE is fresh")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (heartbeat)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (url)")
    args = parser.parse_args(argv)
    if args.url:
        healthy = url_ok(args.url, args.timeout)
    else:
        age = heartbeat_age(os.environ.get("HEARTBEAT_FILE", "/tmp/heartbeat"))
        healthy = age is not None and age <= args.max_age
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
