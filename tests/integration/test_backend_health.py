"""MySQL's health check (compose.yaml) and readiness probe (manifests/base/mysql.yaml), run for real.

Both log in as the service's user over TCP with the password in an option file on standard input (as
the mysql image's entrypoint passes it, instead of the deprecated MYSQL_PWD), and read the table init.sql
makes. Here they run with `sh -c` against the local MySQL or MariaDB, as a throwaway user.
"""

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_check() -> str:
    test = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["mysql"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return test[1].replace("$$", "$")  # compose's escape for a literal $


def kubernetes_check() -> str:
    statefulset = next(doc for doc in yaml.safe_load_all((ROOT / "manifests/base/mysql.yaml").read_text())
                       if doc["kind"] == "StatefulSet")
    command = statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    return command[2]


@pytest.fixture(scope="module")
def mysql_account(servers):
    """A throwaway database with the users table and a user who may read it: {name: value} as the
    mysql container's environment has them."""
    if shutil.which("mysql") is None:
        reason = "needs the `mysql` client, which the mysql image has"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    if servers["MYSQL_HOST"] != "127.0.0.1" or servers["MYSQL_PORT"] != "3306":
        pytest.skip("the checks connect to 127.0.0.1:3306, as in the mysql container")
    tag = secrets.token_hex(4)
    account = {"MYSQL_USER": f"hc_{tag}", "MYSQL_PASSWORD": secrets.token_urlsafe(18), "MYSQL_DATABASE": f"hc_{tag}"}
    url = sa.engine.URL.create("mysql+pymysql", username=servers["MYSQL_USER"],
                               password=servers["MYSQL_PASSWORD"] or None, host="127.0.0.1", port=3306)
    engine = sa.create_engine(url)
    hosts = ("%", "localhost")
    with engine.begin() as db:
        db.execute(sa.text(f"CREATE DATABASE `{account['MYSQL_DATABASE']}`"))
        db.execute(sa.text(f"CREATE TABLE `{account['MYSQL_DATABASE']}`.users (id INT)"))
        for host in hosts:
            db.execute(sa.text(f"CREATE USER '{account['MYSQL_USER']}'@'{host}' IDENTIFIED BY :password"),
                       {"password": account["MYSQL_PASSWORD"]})
            grant = f"GRANT SELECT ON `{account['MYSQL_DATABASE']}`.* TO '{account['MYSQL_USER']}'@'{host}'"
            db.execute(sa.text(grant))
    try:
        yield account
    finally:
        with engine.begin() as db:
            for host in hosts:
                db.execute(sa.text(f"DROP USER IF EXISTS '{account['MYSQL_USER']}'@'{host}'"))
            db.execute(sa.text(f"DROP DATABASE IF EXISTS `{account['MYSQL_DATABASE']}`"))
        engine.dispose()


def run(check: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", check], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("check", [compose_check, kubernetes_check], ids=["compose", "kubernetes"])
def test_mysql_check_passes_with_the_users_password_and_no_password_in_the_environment(check, mysql_account):
    assert "MYSQL_PWD" not in check()
    result = run(check(), mysql_account)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("check", [compose_check, kubernetes_check], ids=["compose", "kubernetes"])
def test_mysql_check_fails_with_a_wrong_password_or_before_init_sql_ran(check, mysql_account):
    assert run(check(), {**mysql_account, "MYSQL_PASSWORD": "wrong"}).returncode != 0
    assert run(check(), {**mysql_account, "MYSQL_DATABASE": "hc_does_not_exist"}).returncode != 0
