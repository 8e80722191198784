"""common.patches: what each patch relies on is there in the pinned libraries, and a library that moves
it stops the service at start with a message naming the patch."""

import pytest
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from common import patches


def test_the_pinned_libraries_have_what_every_patch_relies_on():
    patches.check()


def test_a_gevent_worker_that_does_more_in_handle_stops_the_start(monkeypatch):
    def handle(self, listener, client, addr):
        client.setblocking(1)
        self.cfg.something_new(client)
        super(GeventWorker, self).handle(listener, client, addr)

    monkeypatch.setattr(GeventWorker, "handle", handle)
    with pytest.raises(patches.PatchOutdated) as stopped:
        patches.check()
    assert "StreamingWorker (gunicorn's gevent worker): GeventWorker.handle does more" in str(stopped.value)


def test_a_renamed_parameter_stops_the_start(monkeypatch):
    monkeypatch.setattr(AsyncWorker, "handle", lambda self, listener, connection, addr: None)
    with pytest.raises(patches.PatchOutdated) as stopped:
        patches.check()
    message = str(stopped.value)
    assert "AsyncWorker.handle no longer takes self, listener, client, addr" in message
    assert "AsyncWorker.handle no longer ends a connection on StopIteration" in message
    assert "common/patches.py" in message
