# shellcheck shell=bash
# Sourced by the scripts: makes .venv from nothing, or refreshes it when the lock file changed.
# Sets ROOT, VENV and PY. What the installers print goes to .venv/install.log so that scripts stay quiet.
# MP3CONVERTER_VENV puts the venv elsewhere: the devcontainer keeps its own (Linux wheels, its user's)
# in the container's home, so that nothing of it lands in the mounted checkout.
#
# The venv holds exactly requirements-dev.lock (scripts/lock writes it): every package pinned, with its
# hashes. uv installs it (seconds, in parallel): the one on PATH, else the version the lock pins, which
# pip installs first (hash-checked). Where uv cannot run, pip installs the whole lock, hash-checked too.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${MP3CONVERTER_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
LOCK="$ROOT/requirements-dev.lock"

# The lines of one package in the lock (its pin and hashes), for pip to install it alone.
locked_package() {
  awk -v name="$1" '$0 ~ "^" name "==" {on=1} on && !/^ / && $0 !~ "^" name "==" {on=0} on' "$LOCK"
}

install_lock() {
  local uv="" pinned
  if command -v uv >/dev/null 2>&1; then
    uv=$(command -v uv)
  else
    pinned=$(mktemp)
    locked_package uv >"$pinned"
    "$PY" -m pip install --disable-pip-version-check -q --require-hashes --no-deps -r "$pinned" &&
      uv="$VENV/bin/uv"
    rm -f "$pinned"
  fi
  if [ -n "$uv" ] && "$uv" pip install --python "$PY" --require-hashes -r "$LOCK"; then
    return 0
  fi
  echo "(uv could not install the lock: pip installs it)"
  "$PY" -m pip install --disable-pip-version-check -q --require-hashes --no-deps -r "$LOCK"
}

ensure_venv() {
  local stamp want
  want=$(cat "${BASH_SOURCE[0]}" "$LOCK" | sha256sum | cut -c1-16)
  stamp="$VENV/.requirements-$want"
  [ -f "$stamp" ] && return 0
  echo "Preparing .venv (first run or requirements-dev.lock changed; log in .venv/install.log)..." >&2
  [ -x "$PY" ] || python3 -m venv "$VENV" || { echo "python3 -m venv failed: install python3-venv" >&2; return 1; }
  if ! install_lock >"$VENV/install.log" 2>&1; then
    echo "installing requirements-dev.lock failed; see .venv/install.log:" >&2
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
