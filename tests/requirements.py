"""The pins of a requirements file, its -r includes followed (read by the lock and the wheel checks)."""

import re
from pathlib import Path

PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]+\])?)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    """{name, with its extras, lower case: version}."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif match := PINNED.match(line):
            found[match.group(1).lower()] = match.group(2)
    return found
