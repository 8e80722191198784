"""scripts/run-local: auth, gateway, converter and notification from source, in one process.

Reads .env (variables already in the environment win). Needs MySQL and RabbitMQ; MongoDB is an
in-process mongomock when MONGODB_URI is unset or `memory`. Ctrl-C or SIGTERM stops it.

--debug (or DEBUG=true): a debugger may attach on 127.0.0.1:DEBUG_PORT (5678 unless set), one port for
all four services, since they share this process (.vscode/launch.json: "run-local").
--reload: started anew when a Python file under services/ is saved (runlocal.reload).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/run-local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env", help="default: .env")
    parser.add_argument("--converters", type=int, default=1, help="converter workers (default 1)")
    parser.add_argument("--debug", action="store_true", help="listen for a debugger on 127.0.0.1:DEBUG_PORT")
    parser.add_argument("--reload", action="store_true", help="start anew when a Python file is saved")
    args = parser.parse_args(argv)
    if args.reload:
        from runlocal.reload import serve_reloading

        return serve_reloading([arg for arg in (sys.argv[1:] if argv is None else argv) if arg != "--reload"])
    # The project's code only now: with --reload, this process forks the children that run it.
    from common import debugger, logs
    from common.service import stop_on_signals
    from common.settings import LoggingSettings, load
    from runlocal import mongo, stack

    if args.debug:
        os.environ["DEBUG"] = "true"
    if args.env_file.exists():
        stack.apply_dotenv(args.env_file)
    else:
        print(f"No {args.env_file.name}: using the environment and defaults (scripts/init-env makes one).",
              file=sys.stderr)
    os.environ.setdefault("MONGODB_URI", mongo.MEMORY)
    logs.configure(load(LoggingSettings).log_level)
    debugger.listen_if_requested(host="127.0.0.1")
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
