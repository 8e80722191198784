"""What scripts/create-user, set-password and delete-user share: .env read, and the schema in place."""

import os
import sys
from pathlib import Path

from common.settings import MySQLSettings, load
from runlocal import mongo, stack
from runlocal.database import prepare

ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def run(command_main, argv, prog: str) -> int:
    """One of auth's account commands, from source, against the servers .env names."""
    if ENV_FILE.exists():
        stack.apply_dotenv(ENV_FILE)
    os.environ.setdefault("MONGODB_URI", mongo.MEMORY)
    if not {"-h", "--help"} & set(sys.argv[1:] if argv is None else argv):
        prepare(load(MySQLSettings))
    return command_main(argv, prog=prog)
