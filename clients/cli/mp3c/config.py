"""Where mp3c keeps its tokens: one file in the user's config dir, readable by that user alone,
one token per gateway URL. MP3C_TOKEN, when set, wins over the file."""

import json
import os
from pathlib import Path

from platformdirs import user_config_path


def token_file() -> Path:
    return user_config_path("mp3c") / "tokens.json"


def _saved() -> dict[str, str]:
    try:
        return json.loads(token_file().read_text())
    except (OSError, ValueError):
        return {}


def load_token(url: str) -> str | None:
    return os.environ.get("MP3C_TOKEN") or _saved().get(url)


def _write(tokens: dict[str, str]) -> None:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(tokens, out)
    os.chmod(temporary, 0o600)  # in case it existed with looser bits
    os.replace(temporary, path)


def save_token(url: str, token: str) -> None:
    _write({**_saved(), url: token})


def forget_token(url: str) -> bool:
    tokens = _saved()
    if url not in tokens:
        return False
    del tokens[url]
    _write(tokens)
    return True
