"""scripts/init-env, run as a user runs it: makes .env from .env.example, with fresh secrets, never overwriting."""

import re
import stat
import subprocess
import sys
from pathlib import Path

from common.settings import ALL_SETTINGS, load
from tests.unit.envfile import ASSIGNMENT, EXAMPLE, variables

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "init-env"
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=check,
                          timeout=30)


def init_env(output: Path) -> Path:
    run("--output", str(output))
    return output


def values(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := ASSIGNMENT.match(line):
            assert match.group(1) not in found, f"{match.group(1)} is set twice"
            found[match.group(1)] = match.group(2)
    return found


def example() -> list[tuple[str, str, bool]]:
    """(name, default, marked [secret]) for each variable of .env.example."""
    return variables(EXAMPLE.read_text().splitlines())


SECRETS = [name for name, _default, secret in example() if secret]
PLAIN = {name: default for name, default, secret in example() if not secret}


def test_the_example_has_secrets_to_fill():
    assert {"JWT_SECRET", "ADMIN_PASSWORD", "MYSQL_PASSWORD"} <= set(SECRETS)


def test_it_writes_every_variable_of_env_example(tmp_path):
    written = values(init_env(tmp_path / ".env"))
    assert list(written) == [name for name, _d, _s in example()]
    assert {name: written[name] for name in PLAIN} == PLAIN


def test_every_secret_gets_a_long_url_safe_random_value(tmp_path):
    first = values(init_env(tmp_path / "one.env"))
    second = values(init_env(tmp_path / "two.env"))
    for name in SECRETS:
        assert len(first[name]) >= 24, name
        assert URL_SAFE.match(first[name]), name
        assert first[name] != second[name], name
    assert len({first[name] for name in SECRETS}) == len(SECRETS), "each secret is drawn on its own"
    assert len(first["JWT_SECRET"].encode()) >= 32, "auth refuses a shorter JWT_SECRET"


def test_a_second_run_changes_nothing(tmp_path):
    output = init_env(tmp_path / ".env")
    before = output.read_bytes()
    result = run("--output", str(output))
    assert result.returncode == 0
    assert output.read_bytes() == before


def test_values_already_in_env_are_kept_and_missing_ones_appended(tmp_path):
    output = tmp_path / ".env"
    # Hand-edited, without a final newline.
    output.write_text("# mine\nJWT_SECRET=my-own-secret-my-own-secret\nLOG_LEVEL=DEBUG\nMAX_UPLOAD_MB=5")
    init_env(output)
    text = output.read_text()
    assert text.startswith("# mine\nJWT_SECRET=my-own-secret-my-own-secret\nLOG_LEVEL=DEBUG\nMAX_UPLOAD_MB=5\n")
    written = values(output)
    assert written["JWT_SECRET"] == "my-own-secret-my-own-secret"
    assert written["LOG_LEVEL"] == "DEBUG"
    assert written["MAX_UPLOAD_MB"] == "5"
    assert set(written) == {name for name, _d, _s in example()}
    assert len(written["ADMIN_PASSWORD"]) >= 24


def test_variables_new_in_the_example_are_added_to_an_old_env(tmp_path):
    example_file = tmp_path / "example"
    output = tmp_path / ".env"
    example_file.write_text("# A.\nA=1\n")
    run("--example", str(example_file), "--output", str(output))
    example_file.write_text("# A.\nA=2\n# B.\nB=3\n# [secret]\nC=\n")
    run("--example", str(example_file), "--output", str(output))
    written = values(output)
    assert (written["A"], written["B"]) == ("1", "3")
    assert len(written["C"]) >= 24


def test_the_file_is_readable_by_its_owner_only(tmp_path):
    output = init_env(tmp_path / ".env")
    assert stat.S_IMODE(output.stat().st_mode) == 0o600


def test_an_existing_env_that_gets_new_variables_is_made_private(tmp_path):
    output = tmp_path / ".env"
    output.write_text("LOG_LEVEL=INFO\n")
    output.chmod(0o644)
    init_env(output)
    assert stat.S_IMODE(output.stat().st_mode) == 0o600


WATCH_CHMOD = """
import os, runpy, stat, sys
modes = []
def hook(event, args):
    if event == "os.chmod" and not modes:
        modes.append(stat.S_IMODE(os.stat(args[0]).st_mode))
sys.addaudithook(hook)
os.umask(0o022)
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("MODE_BEFORE_CHMOD", oct(modes[0]) if modes else None)
"""


def test_the_secrets_are_never_readable_by_others_even_while_written(tmp_path):
    output = tmp_path / ".env"
    result = subprocess.run([sys.executable, "-c", WATCH_CHMOD, str(SCRIPT), "--output", str(output)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "JWT_SECRET=" in output.read_text()
    mode = result.stdout.split("MODE_BEFORE_CHMOD")[-1].strip()
    assert mode == "None" or int(mode, 8) & 0o077 == 0, f"the file was {mode} while holding the secrets"


def test_env_is_ignored_by_git_and_env_example_is_not():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, timeout=30)
    example_ignored = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, timeout=30)
    assert ignored.returncode == 0
    assert example_ignored.returncode == 1


def test_help_exits_0_and_explains(tmp_path):
    result = run("--help")
    assert result.returncode == 0
    assert "--output" in result.stdout
    assert "usage" in result.stdout.lower()


def test_the_written_env_is_a_valid_configuration_for_every_service(tmp_path, clean_env):
    for name, value in values(init_env(tmp_path / ".env")).items():
        clean_env.setenv(name, value)
    for settings_class in ALL_SETTINGS:
        load(settings_class)
