"""scripts/k8s-images: the no-Tilt way to build the images into minikube, against a fake `minikube`.

The fake behaves as minikube's own code does (v1.38.1, pkg/minikube/machine/build_images.go): it copies
the build context and reads `-f` relative to it; when the build fails it logs "Failed to build image for
profile ..." with klog.Warningf and exits 0 all the same; `image ls` lists what was built, by its
normalized name (docker.io/<name>:latest). The documented command of old (`-f services/<name>/Dockerfile
services`) therefore "succeeded" and built nothing, and the pods sat in ErrImageNeverPull.

Where that warning goes (cmd/minikube/main.go: setFlags): minikube sets klog's logtostderr and
alsologtostderr to false and its log_file to a file under the temporary directory, unless the user sets
them; klog copies to stderr only messages of its stderrthreshold (ERROR) and above. So a warning is in
the log file alone, never on the terminal, unless --alsologtostderr or --logtostderr is given.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.harness.k8s_stack import APP_SERVICES

ROOT = Path(__file__).resolve().parents[2]
FAKE_MINIKUBE = r"""#!/usr/bin/env bash
# A stand-in for minikube's `image build` and `image ls`, as minikube v1.3x behaves.
state="$FAKE_STATE"
echo "minikube $*" >> "$state/calls"
if [ "$1 $2" = "image ls" ]; then
  printf '%s\n' registry.k8s.io/pause:3.10 registry.k8s.io/coredns/coredns:v1.12.0
  cat "$state/images" 2>/dev/null
  exit 0
fi
[ "$1 $2" = "image build" ] || { echo "fake minikube: unexpected $*" >&2; exit 64; }
shift 2
tag="" file="Dockerfile" opts="" log_file="${TMPDIR:-/tmp}/minikube_image_fake.log" also_stderr=""
while [ $# -gt 1 ]; do
  case "$1" in
    -t|--tag) tag=$2; shift 2 ;;
    -f|--file) file=$2; shift 2 ;;
    --build-opt=*) opts="$opts --${1#--build-opt=}"; shift ;;  # handed to the runtime's build as --<opt>
    --log_file=*) log_file=${1#--log_file=}; shift ;;
    --alsologtostderr|--logtostderr) also_stderr=1; shift ;;
    *) echo "fake: $1?" >&2; exit 64 ;;
  esac
done
context=$1
case "$file" in /*) dockerfile=$file ;; *) dockerfile="$context/$file" ;; esac
name=${tag%%:*}
warn() {  # klog.Warningf: into the log file (and stderr only when asked), then minikube exits 0
  line="W1201 10:00:00.000000   4242 build_images.go:141] Failed to build image for profile minikube."
  line="$line make sure the profile is running. docker build /var/lib/minikube/build/build.4242: $1"
  echo "$line" >> "$log_file"
  [ -z "$also_stderr" ] || echo "$line" >&2
  exit 0
}
[ -f "$dockerfile" ] || warn "unable to prepare context: lstat $dockerfile: no such file or directory"
# The recipe's own check of its build argument (docker build --build-arg=SERVICE=<name>).
if grep -q '^ARG SERVICE$' "$dockerfile"; then
  case "$opts" in *" --build-arg=SERVICE="?*) ;; *) warn "SERVICE: pass --build-arg SERVICE=auth, ..." ;; esac
fi
case " ${FAKE_FAIL:-} " in *" $name "*) warn "The command '/bin/sh -c pip install' returned a non-zero code: 1" ;; esac
case " ${FAKE_FAIL_QUIETLY:-} " in *" $name "*) exit 0 ;; esac
case "$name" in */*) ;; *) name="library/$name" ;; esac
echo "docker.io/$name:latest" >> "$state/images"
echo "Successfully tagged $tag"
"""


@pytest.fixture
def minikube(tmp_path):
    """Run scripts/k8s-images with the fake minikube first on PATH; returns (run, calls, images)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    fake = bin_dir / "minikube"
    fake.write_text(FAKE_MINIKUBE)
    fake.chmod(0o755)

    def run(*args, command=None, **env):
        return subprocess.run(command or [str(ROOT / "scripts/k8s-images"), *args], cwd=ROOT,
                              env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_STATE": str(state),
                                   **env}, capture_output=True, text=True, timeout=60)

    def calls():
        path = state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def images():
        path = state / "images"
        return path.read_text().splitlines() if path.exists() else []

    return run, calls, images


def test_the_fake_behaves_as_minikube_does_with_the_old_documented_command(minikube, tmp_path):
    """`-f` is read relative to the copied context: the old command exited 0 and built nothing, its
    warning in minikube's log file, not on the terminal."""
    run, _calls, images = minikube
    log = tmp_path / "minikube.log"
    result = run(command=["minikube", "image", "build", f"--log_file={log}", "-t", "auth", "-f",
                          "services/auth/Dockerfile", "services"])
    assert result.returncode == 0 and "Failed to build image" not in result.stdout + result.stderr
    assert "Failed to build image" in log.read_text()
    assert images() == []


def test_the_fake_fails_a_build_of_the_recipe_that_does_not_name_the_service(minikube, tmp_path):
    run, _calls, images = minikube
    log = tmp_path / "minikube.log"
    result = run(command=["minikube", "image", "build", f"--log_file={log}", "-t", "mp3converter/auth", "-f",
                          "Dockerfile", "services"])
    assert result.returncode == 0 and "SERVICE" in log.read_text()
    assert images() == []


def test_it_builds_the_four_images_with_the_dockerfile_relative_to_the_context(minikube):
    run, calls, images = minikube
    result = run()
    assert result.returncode == 0, result.stderr
    builds = [call for call in calls() if " image build " in call]
    expected = [f"-t mp3converter/{name} -f Dockerfile --build-opt=build-arg=SERVICE={name} services"
                for name in APP_SERVICES]
    assert [re.sub(r"^minikube image build --log_file=\S+ ", "", call) for call in builds] == expected
    assert images() == [f"docker.io/mp3converter/{name}:latest" for name in APP_SERVICES]
    assert "kubectl apply -k ." in result.stdout


def test_it_builds_only_the_images_it_is_given(minikube):
    run, _calls, images = minikube
    assert run("gateway").returncode == 0
    assert images() == ["docker.io/mp3converter/gateway:latest"]


@pytest.mark.parametrize("how", ["FAKE_FAIL", "FAKE_FAIL_QUIETLY"], ids=["with-a-warning", "without-a-word"])
def test_a_failed_build_fails_loudly_and_names_the_image(minikube, how):
    """minikube exits 0 either way: the script does not."""
    run, _calls, _images = minikube
    result = run(**{how: "mp3converter/converter"})
    assert result.returncode != 0
    assert "not built: mp3converter/converter" in result.stderr
    assert "mp3converter/auth" not in result.stderr.split("not built:")[1]
    if how == "FAKE_FAIL":
        assert "returned a non-zero code" in result.stderr, "why, from minikube's log file"


def test_a_stale_image_does_not_hide_a_failed_rebuild(minikube):
    run, _calls, images = minikube
    assert run().returncode == 0
    result = run("gateway", FAKE_FAIL="mp3converter/gateway")
    assert "docker.io/mp3converter/gateway:latest" in images(), "the old image is still there"
    assert result.returncode != 0 and "not built: mp3converter/gateway" in result.stderr


def test_without_minikube_or_with_a_wrong_name_it_says_what_to_do(tmp_path):
    script = str(ROOT / "scripts/k8s-images")
    bare = subprocess.run([script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert bare.returncode == 1 and "minikube is not installed" in bare.stderr
    wrong = subprocess.run([script, "gatway"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown service: gatway" in wrong.stderr


BROKEN = re.compile(r"minikube image build[^\n]*-f\s+\"?services/")


DOCUMENTS = ["README.md", "docs/kubernetes.md", *[f"manifests/base/{name}.yaml" for name in APP_SERVICES]]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_no_document_shows_the_broken_build_command(path):
    text = (ROOT / path).read_text()
    assert not BROKEN.search(text), f"{path} shows `minikube image build -f services/...`, which builds nothing"


@pytest.mark.parametrize("path", ["README.md", "docs/kubernetes.md"])
def test_the_docs_build_the_images_with_the_script(path):
    assert "scripts/k8s-images" in (ROOT / path).read_text()
