"""scripts/delete-user EMAIL: auth.delete_user from source, against the MySQL and MongoDB of .env."""

import sys

from auth import delete_user
from runlocal.accounts import run


def main(argv=None) -> int:
    return run(delete_user.main, argv, "scripts/delete-user")


if __name__ == "__main__":
    sys.exit(main())
