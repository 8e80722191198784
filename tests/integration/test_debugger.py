"""A debugger in scripts/run-local (and so in the devcontainer, where it runs the same way): `--debug`
listens on 127.0.0.1:DEBUG_PORT for all four services of its process; an editor attaches with no path
mappings (.vscode/launch.json's "run-local"), stops in the upload route and in the converter's handler."""

import socket

import pytest

from sample_media import make_video
from tests.debugging import conversion_stops_at_the_breakpoint, upload_stops_at_the_breakpoint
from tests.servers import ROOT, free_port, ready_run_local

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def own_names(stack_env: dict, suffix: str, **more: str) -> dict:
    return {**stack_env, "MYSQL_DB": stack_env["MYSQL_DB"] + f"_{suffix}",
            "VIDEO_QUEUE": stack_env["VIDEO_QUEUE"] + f".{suffix}", "MP3_QUEUE": stack_env["MP3_QUEUE"] + f".{suffix}",
            **more}


@pytest.fixture(scope="module")
def debugged(stack_env):
    port = free_port()
    with ready_run_local(own_names(stack_env, "dbg", DEBUG_PORT=str(port)), "--debug") as (_process, client):
        yield client, port


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("debugged") / "video.mp4", 2, size="160x120", rate=10)


def test_run_local_stops_at_a_breakpoint_in_the_upload_route(debugged, video):
    client, port = debugged
    upload_stops_at_the_breakpoint(client, port, ROOT / "services/gateway", [], video)


def test_run_local_stops_at_a_breakpoint_in_the_converters_handler(debugged, video):
    client, port = debugged
    conversion_stops_at_the_breakpoint(client, port, ROOT / "services/converter", [], video)


def test_without_debug_nothing_listens(stack_env):
    port = free_port()
    with ready_run_local(own_names(stack_env, "nodbg", DEBUG_PORT=str(port))), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
