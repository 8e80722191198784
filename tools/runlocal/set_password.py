"""scripts/set-password EMAIL: auth.set_password from source, with .env and the schema in place."""

import sys

from auth import set_password
from runlocal.accounts import run


def main(argv=None) -> int:
    return run(set_password.main, argv, "scripts/set-password")


if __name__ == "__main__":
    sys.exit(main())
