"""Add a user; the password is read from standard input, never from the command line.

    printf '%s\n' 'a long password' | python -m auth.create_user alice@example.com [--admin]

scripts/create-user runs this from source; in a container: docker compose exec -T auth python -m auth.create_user.
"""

import argparse
import getpass
import sys

from auth.database import engine_for
from auth.passwords import hash_password
from auth.users import DuplicateUser, UserStore
from common.settings import MySQLSettings, load

MIN_PASSWORD_LENGTH = 8


def read_password() -> str:
    if sys.stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        if first != second:
            raise SystemExit("The passwords differ.")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv=None, prog="python -m auth.create_user") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    parser.add_argument("--admin", action="store_true", help="the user may administer")
    args = parser.parse_args(argv)
    if "@" not in args.email:
        raise SystemExit(f"{args.email!r} is not an e-mail address.")
    password = read_password()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    settings = load(MySQLSettings)
    try:
        UserStore(engine_for(settings)).add(args.email, hash_password(password), is_admin=args.admin)
    except DuplicateUser:
        raise SystemExit(f"A user {args.email} already exists.") from None
    print(f"Created {'admin ' if args.admin else ''}user {args.email}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
