"""A debugger in the compose development stack, for real: with DEBUG=true (the watch stack runs with it),
each service's debugpy answers on its port, published on the host's loopback. An editor attaches with
.vscode/launch.json's path mappings (this tree's folders onto /app/<name> in the images), stops in the
gateway's upload route (gunicorn's gevent worker) and in the converter's handler, and the work completes."""

import json
from pathlib import Path

import pytest

from tests.compose.stack import video
from tests.debugging import conversion_stops_at_the_breakpoint, upload_stops_at_the_breakpoint

pytestmark = pytest.mark.timeout(1800)

LAUNCH = json.loads((Path(__file__).resolve().parents[2] / ".vscode/launch.json").read_text())


def mappings(tree, service: str) -> list:
    """The path mappings of the service's attach configuration, ${workspaceFolder} being this tree."""
    [config] = [c for c in LAUNCH["configurations"] if c["name"] == f"{service}: attach (compose, Tilt)"]
    return [(m["localRoot"].replace("${workspaceFolder}", str(tree)), m["remoteRoot"]) for m in config["pathMappings"]]


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    return video(tmp_path_factory.mktemp("debugged") / "video.mp4", 2, size="160x120", rate=10)


def test_the_gateway_stops_at_a_breakpoint_in_the_upload_route(watch_client, watch_env, tree, small_video):
    upload_stops_at_the_breakpoint(watch_client, int(watch_env["GATEWAY_DEBUG_PORT"]), tree / "services/gateway",
                                   mappings(tree, "gateway"), small_video)


def test_the_converter_stops_at_a_breakpoint_in_its_handler(watch_client, watch_env, tree, small_video):
    conversion_stops_at_the_breakpoint(watch_client, int(watch_env["CONVERTER_DEBUG_PORT"]),
                                       tree / "services/converter", mappings(tree, "converter"), small_video)
