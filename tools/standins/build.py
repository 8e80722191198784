"""scripts/standins: local stand-ins for the images that compose.yaml and the Dockerfiles name, for a
machine that cannot pull them (no registry reachable). Each is a test double built from Debian's
packages (tools/standins/images/), tagged with the exact name it stands in for, so compose.yaml runs unchanged,
and labelled `mp3converter.standin=<that name>`.

For each image: a real one already there is kept; one that can be pulled is pulled (so with a
registry there are no stand-ins at all); otherwise its stand-in is built, or rebuilt when its recipe
changed. Idempotent: a second run changes nothing. A real image is never replaced.

    python -m standins [--no-pull] [--list] [--remove]   (scripts/standins)
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "tools" / "standins" / "images"
LABEL = "mp3converter.standin"
RECIPE_LABEL = "mp3converter.standin.recipe"
BASE = "mp3converter-standin-base:bookworm"
# Which recipe stands in for which repository.
KINDS = {"python": "python", "mysql": "mysql", "mongo": "mongo", "rabbitmq": "rabbitmq", "axllent/mailpit": "mailpit",
         "prom/prometheus": "prometheus"}
EXTRA_CA = Path("/usr/local/share/ca-certificates")
# The base: Debian bookworm with python3 in a venv first on PATH (pip without --break-system-packages),
# no services started by package scripts, no documentation, and the host's extra CA certificates (for
# pip and apt behind a TLS-inspecting proxy).
MMDEBSTRAP = [
    "mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--customize-hook=printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\"",
    "--customize-hook=chmod 755 \"$1/usr/sbin/policy-rc.d\"",
    "--customize-hook=chroot \"$1\" python3 -m venv /opt/venv",
    "--customize-hook=printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > \"$1/etc/pip.conf\"",
]  # fmt: skip
IMPORT_CHANGES = [
    "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]


class StandinError(Exception):
    pass


def docker(*args: str, check: bool = True, quiet: bool = True, **kwargs) -> subprocess.CompletedProcess:
    output = {"capture_output": True, "text": True} if quiet else {}
    result = subprocess.run(["docker", *args], **output, **kwargs)
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip() if quiet else ""
        raise StandinError(f"docker {' '.join(args[:3])} failed: {detail}")
    return result


def wanted_images(root: Path = ROOT) -> list[str]:
    """The images to be had locally: compose.yaml's services that are not built, and every FROM."""
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    images = [s["image"] for s in services.values() if "image" in s and "build" not in s]
    stages = set()
    for dockerfile in (root / "services" / "Dockerfile", root / ".devcontainer" / "Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            match = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
            if match and match[1] not in stages and "$" not in match[1] and match[1] != "scratch":
                images.append(match[1])
            if match and match[2]:
                stages.add(match[2])
    return list(dict.fromkeys(images))


def kind(image: str) -> str:
    repository = image.rsplit(":", 1)[0].removeprefix("docker.io/").removeprefix("library/")
    if repository not in KINDS:
        raise StandinError(f"no stand-in recipe for {image} (known: {', '.join(KINDS)})")
    return KINDS[repository]


def recipe(name: str) -> str:
    """A digest of everything a stand-in is built from: its folder and the base's recipe."""
    digest = hashlib.sha256(json.dumps([MMDEBSTRAP, IMPORT_CHANGES]).encode())
    for path in sorted((RECIPES / name).rglob("*")) if name != "base" else []:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(RECIPES)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def labels(image: str) -> dict | None:
    """The image's labels ({} for none), or None when there is no such image here."""
    result = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout) or {}


def state(image: str, name: str) -> str:
    found = labels(image)
    if found is None:
        return "absent"
    if LABEL not in found:
        return "real"
    # A stand-in retagged by hand for another tag still names the old one: made again, it names its own.
    current = found.get(RECIPE_LABEL) == recipe(name) and found[LABEL] in (image, "debian:bookworm")
    return "stand-in" if current else "stale stand-in"


def build_base() -> None:
    if state(BASE, "base") == "stand-in":
        return
    if shutil.which("mmdebstrap") is None:
        raise StandinError("mmdebstrap is missing (Debian: apt-get install mmdebstrap)")
    print(f"building {BASE} with mmdebstrap (about a minute)...", flush=True)
    hooks = []
    if EXTRA_CA.is_dir() and any(EXTRA_CA.glob("*.crt")):
        hooks = [f"--customize-hook=sync-in {EXTRA_CA} {EXTRA_CA}",
                 '--customize-hook=chroot "$1" update-ca-certificates']
    command = [*MMDEBSTRAP[:-2], *hooks, *MMDEBSTRAP[-2:], "--quiet", "--format=tar", "bookworm", "-"]
    changes = [*IMPORT_CHANGES, f"LABEL {LABEL}=debian:bookworm {RECIPE_LABEL}={recipe('base')}"]
    rootfs = subprocess.Popen(command, stdout=subprocess.PIPE)
    imported = docker("import", *[f"--change={c}" for c in changes], "-", BASE, stdin=rootfs.stdout, check=False)
    rootfs.stdout.close()
    if rootfs.wait() != 0 or imported.returncode != 0:
        raise StandinError(f"building {BASE} failed: {imported.stderr.strip()}")


def build(image: str, name: str) -> None:
    build_base()
    print(f"building the stand-in for {image} (tools/standins/images/{name})...", flush=True)
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the engine's own builder, as compose uses without buildx
    labels = {
        LABEL: image,
        RECIPE_LABEL: recipe(name),
        "org.opencontainers.image.description": f"Stand-in for {image} (tools/standins/images/{name}): a test double",
    }
    result = docker(
        "build", "--quiet", "--build-arg", f"BASE={BASE}", *[f"--label={k}={v}" for k, v in labels.items()],
        "--tag", image, str(RECIPES / name), check=False, env=env,
    )  # fmt: skip
    if result.returncode != 0:
        raise StandinError(f"building the stand-in for {image} failed:\n{result.stdout}{result.stderr}")


def pulled(image: str) -> bool:
    return docker("pull", "--quiet", image, check=False).returncode == 0


def ensure(pull: bool = True) -> dict[str, str]:
    """Every wanted image present: {image: what it is now}."""
    outcome = {}
    for image in wanted_images():
        try:
            name = kind(image)
        except StandinError:
            # No honest stand-in (e.g. Jaeger, Grafana): what needs it is skipped by its own suite.
            found = labels(image) is not None or (pull and pulled(image))
            outcome[image] = "real (kept)" if found else "absent: no stand-in recipe"
            continue
        now = state(image, name)
        if now in ("real", "stand-in"):
            outcome[image] = now + " (kept)"
        elif now == "absent" and pull and pulled(image):
            outcome[image] = "real (pulled)"
        else:
            build(image, name)
            outcome[image] = "stand-in (built)" if now == "absent" else "stand-in (rebuilt: recipe changed)"
    return outcome


def remove() -> list[str]:
    gone = []
    for image in [*wanted_images(), BASE]:
        if LABEL in (labels(image) or {}):
            docker("image", "rm", image)
            gone.append(image)
    return gone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/standins", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-pull", action="store_true", help="do not try to pull a missing image first")
    parser.add_argument("--list", action="store_true", help="only say what each image is here")
    parser.add_argument("--remove", action="store_true", help="remove the stand-ins (real images stay)")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for image in wanted_images():
                try:
                    print(f"{image}: {state(image, kind(image))}")
                except StandinError:
                    print(f"{image}: {'absent' if labels(image) is None else 'real'} (no stand-in recipe)")
        elif args.remove:
            print("\n".join(f"removed {image}" for image in remove()) or "no stand-ins here")
        else:
            for image, what in ensure(pull=not args.no_pull).items():
                print(f"{image}: {what}")
    except StandinError as exc:
        print(f"scripts/standins: {exc}", file=sys.stderr)
        return 1
    return 0

