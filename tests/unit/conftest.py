"""Fixtures for the unit tests of auth, gateway, settings and init-env."""

import os

import pytest

from common.settings import variable_names


@pytest.fixture
def clean_env(monkeypatch):
    """No variable a service reads is set, so that the real environment cannot leak into a test.

    pydantic-settings matches names case-insensitively, so lower-case spellings go too."""
    names = {name.lower() for name in variable_names()}
    for key in list(os.environ):
        if key.lower() in names:
            monkeypatch.delenv(key)
    return monkeypatch
