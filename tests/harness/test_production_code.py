"""services/ holds only what production runs. Its modules never import mongomock (run-local's and the
tests' in-process MongoDB lives in tools/runlocal), no service's requirements list it, and a library's
private parts are used only in common/patches.py, where each use is checked at start.

What counts as using a library's private parts, anywhere else under services/:
- assigning to (or deleting) an attribute of an imported module or class, or setattr() on one;
- reaching an attribute whose name starts with one underscore on anything but self or cls;
- calling an imported class's method on self directly, past the method that overrides it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
PATCHES = SERVICES / "common" / "common" / "patches.py"
FIRST_PARTY = {path.name for path in SERVICES.glob("*/*") if (path / "__init__.py").exists()}
# Imported objects made to be written: flask.g is the namespace of the request being served.
NAMESPACES = {"g"}


def imported_names(tree: ast.Module) -> set[str]:
    """The names a module binds to other projects' modules and classes (its own packages excepted)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] not in FIRST_PARTY}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] not in FIRST_PARTY:
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def library_patches(source: str) -> list[str]:
    """Each place in `source` that changes or reaches into another project's code, as 'line: what'."""
    tree = ast.parse(source)
    imported = imported_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and root_name(target) in imported - NAMESPACES:
                found.append(f"{node.lineno}: sets {ast.unparse(target)}")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args \
                    and root_name(node.args[0]) in imported:
                found.append(f"{node.lineno}: {ast.unparse(node)[:60]}")
            if isinstance(node.func, ast.Attribute) and root_name(node.func) in imported and node.args \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id == "self":
                found.append(f"{node.lineno}: calls {ast.unparse(node.func)} on self, past its override")
        if isinstance(node, ast.Attribute) and is_private(node.attr) \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"{node.lineno}: reaches {ast.unparse(node)}")
    return found


def production_modules() -> list[Path]:
    return sorted(path for path in SERVICES.rglob("*.py") if path != PATCHES)


def test_no_module_under_services_imports_mongomock():
    offenders = []
    for path in [*production_modules(), PATCHES]:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for m in modules if m.split(".")[0] == "mongomock"]
    assert offenders == []


def test_no_service_requirements_list_mongomock():
    listed = [path.relative_to(ROOT) for path in SERVICES.glob("*/requirements*.txt")
              if any(line.split("==")[0].strip().lower() == "mongomock" for line in path.read_text().splitlines())]
    assert listed == []


def test_only_the_patches_module_reaches_into_libraries():
    found = {str(path.relative_to(ROOT)): patches for path in production_modules()
             if (patches := library_patches(path.read_text()))}
    assert found == {}


@pytest.mark.parametrize("source", [
    "import gridfs.synchronous.grid_file as grid_file\ngrid_file._UPLOAD_BUFFER_SIZE = 8\n",
    "from gunicorn.workers import ggevent\nggevent.GeventWorker.handle = lambda *a: None\n",
    "import mongomock\nsetattr(mongomock.collection.Collection, '_ensure_uniques', None)\n",
    "def bucket(files):\n    files._timeout = None\n",
    "from flask import g\ng._app_ctx = None\n",
    "from gunicorn.workers.base_async import AsyncWorker\nclass W:\n"
    "    def handle(self, a, b, c):\n        AsyncWorker.handle(self, a, b, c)\n",
])
def test_the_check_sees_each_kind_of_patch(source):
    assert library_patches(source)


def test_the_check_leaves_ordinary_code_alone():
    source = ("import logging\nfrom common import storage\nlog = logging.getLogger(__name__)\n"
              "class C:\n    def __init__(self):\n        self._db = storage.bucket(None, storage.VIDEOS)\n"
              "        super().__init__()\n")
    assert library_patches(source) == []
