"""The devcontainer for real: `devcontainer up` builds and starts it with the backends, postCreateCommand
makes its venv, and the services' code and a unit test run inside it; for a host user whose uid is not
1000 as well.

Two breaks the earlier layout had are shown fixed here: a named volume for .venv was created owned by
uid 1000 (updateRemoteUserUID only changes the home folder), so postCreateCommand could not make the venv
for any other uid; and that volume, mounted inside the bind-mounted checkout, made Docker create an
empty root-owned .venv in the host's checkout, after which scripts/test on the host could not make its own.
"""

import pytest

pytestmark = pytest.mark.timeout(3600)


def backends_resolved(devcontainer) -> int:
    result = devcontainer.exec("bash", "-c", "getent hosts mysql mongodb rabbitmq | wc -l")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.fixture(params=["root_host", "other_uid_host"])
def devcontainer(request):
    return request.getfixturevalue(request.param)


def test_up_starts_it_with_the_backends(devcontainer):
    assert backends_resolved(devcontainer) == 3
    result = devcontainer.exec("bash", "-c", "id -u; echo $MP3CONVERTER_VENV; ls $MP3CONVERTER_VENV/bin/python")
    assert result.returncode == 0, result.stdout + result.stderr
    uid, venv, python = result.stdout.split()[-3:]
    assert venv == "/home/dev/.venv" and python == "/home/dev/.venv/bin/python"
    expected = devcontainer.workspace.stat().st_uid if devcontainer.user else 1000
    assert int(uid) == expected, "the container user should be the host user (updateRemoteUserUID)"


def test_its_venv_runs_the_services_code_and_tests(devcontainer):
    """A smoke check, not the unit suite again (the host ran it): the venv postCreateCommand made imports
    the four services and their ffmpeg, and scripts/test runs tests in the container."""
    script = "; ".join([*(f"import {name}.__main__" for name in ("auth", "gateway", "converter", "notification")),
                        "import imageio_ffmpeg, subprocess",
                        "subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-version'], check=True)"])
    result = devcontainer.exec("bash", "-c", f'"$MP3CONVERTER_VENV/bin/python" -c "{script}"')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    result = devcontainer.exec("scripts/test", "tests/unit/test_settings.py", "-q")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_nothing_is_created_in_the_host_checkout(devcontainer):
    assert not (devcontainer.workspace / ".venv").exists(), "a .venv appeared in the host's checkout"


def test_the_backends_answer_from_inside(devcontainer):
    script = (
        "import os, pika, pymongo, pymysql;"
        "pymongo.MongoClient(os.environ['MONGODB_URI'], serverSelectionTimeoutMS=5000).admin.command('ping');"
        "pika.BlockingConnection(pika.URLParameters(os.environ['RABBITMQ_URL'])).close();"
        "pymysql.connect(host='mysql', user=os.environ['MYSQL_USER'], password=os.environ['MYSQL_PASSWORD']).close();"
        "print('backends ok')"
    )
    result = devcontainer.exec("bash", "-c", f'"$MP3CONVERTER_VENV/bin/python" -c "{script}"')
    assert result.returncode == 0 and "backends ok" in result.stdout, result.stdout + result.stderr
