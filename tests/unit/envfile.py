"""Reading .env.example the way a person does: assignments, and the [secret] marks in the comments above them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def variables(lines) -> list[tuple[str, str, bool]]:
    """(name, default, marked [secret]) for each assignment; [secret] is in the comment lines just above it."""
    found, secret = [], False
    for line in lines:
        if line.startswith("#"):
            secret = secret or "[secret]" in line
            continue
        if match := ASSIGNMENT.match(line):
            found.append((match.group(1), match.group(2), secret))
        secret = False
    return found


def assert_json_error(response, status: int) -> dict:
    """A Flask test response is the project's JSON error with this status: {"error", "message"}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] and body["message"]
    return body
