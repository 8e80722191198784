"""In the compose stack (compose.yaml alone, as `docker compose -f compose.yaml up` and `scripts/up --detach` run
it), a
service cannot change its own code: the code belongs to root, the root filesystem is read-only, and only
/tmp (a tmpfs) takes writes. Checked from inside each running container, as its own user."""

import json
import shlex
import subprocess

import pytest

pytestmark = pytest.mark.timeout(1800)

PROBE = """
import errno, json, os, sys
name = sys.argv[1]
code = f"/app/{name}/__main__.py"
def can_write(path):
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        return errno.errorcode[error.errno]
    return "yes"
print(json.dumps({"owner": os.stat(code).st_uid, "uid": os.getuid(), "code": can_write(code),
                  "new file": can_write(f"/app/{name}/new.py"), "etc": can_write("/etc/hostname-new"),
                  "tmp": can_write("/tmp/probe")}))
"""


@pytest.mark.parametrize("service", ["auth", "gateway", "converter", "notification"])
def test_the_code_belongs_to_root_and_only_tmp_is_writable(service, docker_services, stack_compose):
    found = json.loads(stack_compose(f"exec -T {service} python -c '{PROBE}' {service}").strip().splitlines()[-1])
    assert found["owner"] == 0 and found["uid"] == 10001, found
    assert found["code"] in ("EROFS", "EACCES") and found["new file"] in ("EROFS", "EACCES"), found
    assert found["etc"] in ("EROFS", "EACCES"), found
    assert found["tmp"] == "yes", found


def test_the_production_stack_has_no_watch_to_sync_code_into_it(docker_services, compose_prefix):
    """`docker compose -f compose.yaml up` is this stack: compose.override.yaml, where live sync lives, is
    left out, so a sync is refused outright (and would find the code read-only, above)."""
    result = subprocess.run([*shlex.split(compose_prefix), "watch", "--no-up"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "none of the selected services is configured for watch" in result.stderr, result.stderr
