"""Delete a user with everything they stored: their account, then their jobs, videos and MP3s.

    python -m auth.delete_user alice@example.com

scripts/delete-user runs this from source; in a container (with the MongoDB the gateway uses):
    docker compose exec -T -e MONGODB_URI=... auth python -m auth.delete_user alice@example.com

The account goes first, so that no new login or token validation succeeds (a token the gateway
took on trust a moment ago works for at most TOKEN_CACHE_SECONDS more); then the jobs, each in
common.removal's crash-safe order. An account later made with the same address starts empty, and no
token of the deleted one works for it (tokens name the account's id). Running it again finishes
what a failure left: the jobs are deleted even when the account is already gone.
"""

import argparse
import sys

from pymongo.errors import PyMongoError

from auth import emails
from auth.create_user import user_store
from common import storage
from common.removal import JobDeletion
from common.settings import MongoSettings, MySQLSettings, load


def jobs_database(mongo: MongoSettings, connect=storage.connect):
    """The jobs' database, reached before anything is deleted: a user is never left half deleted
    because MongoDB was out of reach."""
    try:
        db = connect(mongo.mongodb_uri, mongo.mongodb_db)
        storage.ping(db)
    except (SystemExit, PyMongoError) as error:
        raise SystemExit(f"Cannot reach the jobs' MongoDB ({error}). Set MONGODB_URI and MONGODB_DB as the "
                         "gateway has them; nothing was deleted.") from None
    return db


def main(argv=None, prog="python -m auth.delete_user", connect=storage.connect) -> int:
    """connect(uri, database): how MONGODB_URI is reached (scripts/delete-user brings its own)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    args = parser.parse_args(argv)
    try:
        email = emails.normalise(args.email)
    except emails.InvalidEmail:
        email = args.email  # an account stored before addresses were checked: deleted as it is spelled
    db = jobs_database(load(MongoSettings), connect)
    account_deleted = user_store(load(MySQLSettings)).delete(email)
    jobs_deleted = JobDeletion(db).delete_all_owned(email)
    if not account_deleted and not jobs_deleted:
        raise SystemExit(f"No user {email} and no jobs of theirs.")
    print(f"Deleted {'user ' + email if account_deleted else 'no user (already gone)'} "
          f"and {jobs_deleted} job(s) with their files.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
