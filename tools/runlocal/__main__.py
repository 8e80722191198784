"""scripts/run-local: auth, gateway, converter and notification from source, in one process.

Reads .env (variables already in the environment win). Needs MySQL and RabbitMQ; MongoDB is an
in-process mongomock when MONGODB_URI is unset or `memory`. Ctrl-C or SIGTERM stops it.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from common import logs
from common.service import stop_on_signals
from common.settings import LoggingSettings, load
from runlocal import mongo, stack

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/run-local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env", help="default: .env")
    parser.add_argument("--converters", type=int, default=1, help="converter workers (default 1)")
    args = parser.parse_args(argv)
    if args.env_file.exists():
        stack.apply_dotenv(args.env_file)
    else:
        print(f"No {args.env_file.name}: using the environment and defaults (scripts/init-env makes one).",
              file=sys.stderr)
    os.environ.setdefault("MONGODB_URI", mongo.MEMORY)
    logs.configure(load(LoggingSettings).log_level)
    stop = stop_on_signals()
    running = stack.start(converters=args.converters)
    try:
        running.wait_ready()
    except TimeoutError as error:
        logging.getLogger("run-local").error(str(error))
        running.stop()
        return 1
    print(f"Ready. Gateway: {running.gateway_url}  (auth: {running.auth_url}; consumers' metrics: "
          f"{running.metrics_url}; Ctrl-C stops)", flush=True)
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
