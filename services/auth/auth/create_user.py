"""Add a user; the password is read from standard input, never from the command line.

    printf '%s\n' 'a long password' | python -m auth.create_user alice@example.com [--admin]

scripts/create-user runs this from source; in a container: docker compose exec -T auth python -m auth.create_user.
"""

import argparse
import getpass
import sys

from auth import emails, schema
from auth.database import engine_for
from auth.passwords import hash_password
from auth.users import DuplicateUser, UserStore
from common.settings import MySQLSettings, load

MIN_PASSWORD_LENGTH = 8


def read_password() -> str:
    """A new password from the terminal (typed twice) or the first line of standard input."""
    if sys.stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        if first != second:
            raise SystemExit("The passwords differ.")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def address(text: str) -> str:
    """The normalised address an account is kept under; a clear exit for one no account can have."""
    try:
        return emails.normalise(text)
    except emails.InvalidEmail as error:
        raise SystemExit(f"Not a usable e-mail address: {error}") from None


def user_store(settings: MySQLSettings) -> UserStore:
    """The users of MYSQL_*, their schema brought up to date first."""
    engine = engine_for(settings)
    schema.upgrade(engine)
    return UserStore(engine)


def main(argv=None, prog="python -m auth.create_user") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    parser.add_argument("--admin", action="store_true", help="the user may administer")
    args = parser.parse_args(argv)
    email = address(args.email)
    password = read_password()
    settings = load(MySQLSettings)
    try:
        user_store(settings).add(email, hash_password(password), is_admin=args.admin)
    except DuplicateUser:
        raise SystemExit(f"A user {email} already exists.") from None
    print(f"Created {'admin ' if args.admin else ''}user {email}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
