"""common.debugger: off unless DEBUG asks; asked for where debugpy is missing, the service stops at start
and says where the debugger is (never a silent no-op)."""

import importlib.util

import pytest

from common import debugger


def test_off_without_debug(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert debugger.requested() is None
    monkeypatch.setenv("DEBUG", "false")
    assert debugger.requested() is None


def test_debug_reads_its_port(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("DEBUG_PORT", "5680")
    assert debugger.requested().debug_port == 5680


def test_asked_for_without_debugpy_stops_with_the_reason(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "debugpy" else real(name, *a))
    with pytest.raises(SystemExit, match="debugpy is not installed here: the debugger is in the development images"):
        debugger.requested()


def test_a_malformed_port_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("DEBUG_PORT", "not-a-port")
    with pytest.raises(SystemExit, match="DEBUG_PORT"):
        debugger.requested()
