"""scripts/delete-user EMAIL: auth.delete_user from source, against the MySQL and MongoDB of .env."""

import os
import sys

from auth import delete_user
from runlocal import mongo
from runlocal.accounts import run


def delete(argv, prog: str) -> int:
    if os.environ["MONGODB_URI"] == mongo.MEMORY:
        print("MONGODB_URI=memory: this process cannot reach the jobs of a running stack's in-process "
              "MongoDB (they go when it stops); only this process's are deleted.", file=sys.stderr)
    return delete_user.main(argv, prog, connect=mongo.connect)


def main(argv=None) -> int:
    return run(delete, argv, "scripts/delete-user")


if __name__ == "__main__":
    sys.exit(main())
