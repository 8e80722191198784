"""The one image recipe of the four services (services/Dockerfile), read as each service's build sees it.

compose.yaml, the Tiltfile, scripts/k8s-images and the workflow all build it from the context services/
with one build argument, SERVICE=<name>; ``for_service`` is the text that build reads.
"""

import json
import re
import shlex
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "services/Dockerfile"
BUILD_ARG = "SERVICE"


def build_args(name: str) -> dict[str, str]:
    """What every way of building gives the recipe for service NAME."""
    return {BUILD_ARG: name}


def for_service(name: str) -> str:
    """The recipe with ${SERVICE} and $SERVICE replaced by NAME, as BuildKit expands them in COPY."""
    return re.sub(r"\$\{SERVICE\}|\$SERVICE\b", name, RECIPE.read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments and blank lines dropped."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def command(name: str) -> list[str]:
    """The command the image's entrypoint execs for service NAME (`python -m <name>`): its shell script's
    words after `exec`, without the arguments it passes on."""
    [entrypoint] = [json.loads(args) for keyword, args in instructions(for_service(name)) if keyword == "ENTRYPOINT"]
    shell, flag, script = entrypoint[:3]
    assert (shell, flag) == ("/bin/sh", "-c"), entrypoint
    words = shlex.split(script)
    assert words[0] == "exec" and words[-1] == "$@", script
    return words[1:-1]
