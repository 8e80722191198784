"""common.dev_reload: gunicorn's reload (DEV_RELOAD) looks four times a second at the service's own code
only, and stops the start when gunicorn no longer has what it relies on. The reload of a real server:
tests/integration/test_dev_reload.py."""

import os
import sys
import threading
from pathlib import Path

import pytest
from gunicorn import reloader
from gunicorn.config import Config

from common import dev_reload

ROOT = Path(__file__).resolve().parents[2]

def test_gunicorn_takes_the_quick_engine_once_registered():
    config = Config()
    config.set("reload_engine", dev_reload.register())
    assert reloader.reloader_engines[config.reload_engine] is dev_reload.QuickReloader


def test_it_watches_the_services_code_and_not_the_installed_libraries():
    import flask

    import gateway.app

    watched = dev_reload.QuickReloader().get_files()
    assert gateway.app.__file__ in watched
    assert flask.__file__ not in watched and threading.__file__ not in watched


def test_a_saved_file_calls_back(tmp_path, monkeypatch):
    module = tmp_path / "edited_module.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("edited_module")
    changed = threading.Event()
    names = []
    watcher = dev_reload.QuickReloader(callback=lambda name: (names.append(name), changed.set()))
    watcher.start()
    threading.Event().wait(2 * dev_reload.INTERVAL_SECONDS)  # its first look records the times
    module.write_text("VALUE = 2\n")
    os.utime(module, (module.stat().st_atime, module.stat().st_mtime + 1))
    assert changed.wait(10), "the change was not noticed"
    assert names[0] == str(module)
    sys.modules.pop("edited_module")


def test_a_gunicorn_without_the_engine_table_stops_the_start(monkeypatch):
    monkeypatch.delattr(reloader, "reloader_engines")
    with pytest.raises(dev_reload.ReloaderOutdated) as stopped:
        dev_reload.register()
    assert "common/dev_reload.py" in str(stopped.value)
    assert "gunicorn.reloader has no reloader_engines table" in str(stopped.value)
