# shellcheck shell=bash
# Sourced by the scripts: makes .venv from nothing, or refreshes it when a requirements file changed.
# Sets ROOT and PY. Output of pip goes to .venv/install.log so that scripts stay quiet.
# MP3CONVERTER_VENV puts the venv elsewhere: the devcontainer keeps its own (Linux wheels, its user's)
# in the container's home, so that nothing of it lands in the mounted checkout.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${MP3CONVERTER_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_venv() {
  local stamp want
  want=$(cat "${BASH_SOURCE[0]}" "$ROOT"/requirements-dev.txt "$ROOT"/services/*/requirements*.txt "$ROOT"/clients/cli/requirements.txt | sha256sum | cut -c1-16)
  stamp="$VENV/.requirements-$want"
  [ -f "$stamp" ] && return 0
  echo "Preparing .venv (first run or requirements changed; log in .venv/install.log)..." >&2
  [ -x "$PY" ] || python3 -m venv "$VENV" || { echo "python3 -m venv failed: install python3-venv" >&2; return 1; }
  if ! { "$PY" -m pip install --disable-pip-version-check -q --upgrade pip &&
         "$PY" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements-dev.txt"; } >"$VENV/install.log" 2>&1; then
    echo "pip install failed; see .venv/install.log:" >&2
    tail -n 20 "$VENV/install.log" >&2
    return 1
  fi
  # The services' folders on sys.path, as PYTHONPATH=/app does in the images, and mp3c's.
  local site
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$ROOT"/services/{common,auth,gateway,converter,notification} "$ROOT/tools" "$ROOT/clients/cli" >"$site/mp3converter.pth"
  rm -f "$VENV"/.requirements-*
  touch "$stamp"
}
