"""scripts/create-user EMAIL [--admin]: auth.create_user from source, with .env and the schema in place."""

import sys

from auth import create_user
from runlocal.accounts import run


def main(argv=None) -> int:
    return run(create_user.main, argv, "scripts/create-user")


if __name__ == "__main__":
    sys.exit(main())
