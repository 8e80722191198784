"""Change a user's password; every token issued before stops working. The new password is read from
standard input, never from the command line.

    printf '%s\n' 'a new long password' | python -m auth.set_password alice@example.com

scripts/set-password runs this from source; in a container: docker compose exec -T auth python -m auth.set_password.
"""

import argparse
import sys

from auth.create_user import address, read_password, user_store
from auth.passwords import hash_password
from common.settings import MySQLSettings, load


def main(argv=None, prog="python -m auth.set_password") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    args = parser.parse_args(argv)
    email = address(args.email)
    password = read_password()
    if not user_store(load(MySQLSettings)).set_password(email, hash_password(password)):
        raise SystemExit(f"No user {email}.")
    print(f"Changed the password of {email}; their earlier tokens no longer work.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
