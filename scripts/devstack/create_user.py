"""scripts/create-user EMAIL [--admin]: auth.create_user from source, with .env and the schema in place."""

import sys
from pathlib import Path

from auth import create_user
from common.settings import MySQLSettings, load
from devstack import stack
from devstack.database import prepare

ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def main(argv=None) -> int:
    if ENV_FILE.exists():
        stack.apply_dotenv(ENV_FILE)
    if not {"-h", "--help"} & set(sys.argv[1:] if argv is None else argv):
        prepare(load(MySQLSettings))
    return create_user.main(argv, prog="scripts/create-user")


if __name__ == "__main__":
    sys.exit(main())
