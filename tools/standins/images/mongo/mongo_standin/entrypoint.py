"""The `mongo` image's entrypoint contract, for the stand-in: on the first start (an empty /data/db),
a server on 127.0.0.1 without authentication creates the root user from MONGO_INITDB_ROOT_USERNAME and
MONGO_INITDB_ROOT_PASSWORD, then runs /docker-entrypoint-initdb.d/*.js with mongosh (as root, against
MONGO_INITDB_DATABASE, default `test`) and *.sh with bash, and stops; then the server starts for real on
every address, with --auth when there is a root user."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mongo_standin import storage

INITDB = Path("/docker-entrypoint-initdb.d")
FIRST_RUN_PORT = "27017"


def say(message: str) -> None:
    print(f"entrypoint: {message}", flush=True)


def first_run(dbpath: Path, user: str | None, password: str | None) -> None:
    server = subprocess.Popen(["mongod", "--bind_ip", "127.0.0.1", "--port", FIRST_RUN_PORT, "--dbpath", str(dbpath)])
    shell = ["mongosh", "--quiet", "--host", "127.0.0.1", "--port", FIRST_RUN_PORT]
    try:
        for _ in range(100):
            if subprocess.run([*shell, "--eval", "quit(0)"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        if user:
            say(f"creating the root user {user!r} in admin")
            create = ("db.getSiblingDB('admin')"
                      ".createUser({user: process.env.ROOT_USER, pwd: process.env.ROOT_PWD, roles: ['root']})")
            env = {**os.environ, "ROOT_USER": user, "ROOT_PWD": password}
            subprocess.run([*shell, "--eval", create], env=env, check=True)
            # `--password=...`: a password may begin with "-".
            shell += [f"--username={user}", f"--password={password}", "--authenticationDatabase=admin"]
        database = os.environ.get("MONGO_INITDB_DATABASE", "test")
        for script in sorted(INITDB.glob("*")) if INITDB.is_dir() else []:
            if script.suffix == ".js":
                say(f"running {script} against {database}")
                subprocess.run([*shell, database, str(script)], check=True)
            elif script.suffix == ".sh":
                say(f"running {script}")
                subprocess.run(["bash", str(script)], check=True)
            else:
                say(f"ignoring {script}")
    except BaseException:
        # Not half made: the next start begins the first start again, as it would on an empty volume.
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(dbpath / storage.FOLDER, ignore_errors=True)
        raise
    server.terminate()
    server.wait(timeout=60)


def main() -> None:
    args = sys.argv[1:] or ["mongod"]
    if args[0] != "mongod":
        os.execvp(args[0], args)  # noqa: S606 (an entrypoint runs the command it is given)
    dbpath = Path("/data/db")
    user, password = os.environ.get("MONGO_INITDB_ROOT_USERNAME"), os.environ.get("MONGO_INITDB_ROOT_PASSWORD")
    if bool(user) != bool(password):
        sys.exit("error: MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD must be given together")
    if not storage.initialized(dbpath):
        first_run(dbpath, user, password)
    extra = ["--auth"] if user and "--auth" not in args else []
    os.execvp("mongod", [*args, "--bind_ip_all", "--dbpath", str(dbpath), *extra])  # noqa: S606


if __name__ == "__main__":
    main()
