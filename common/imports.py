"""The repository code a module can load: its static import closure, plus the package data the
loaded files read.

Both the pipeline check (:mod:`common.pipeline`: every stage declares exactly this code) and the
resume fingerprint (:mod:`common.fingerprint`: a checkpoint belongs to this code) use it.
:func:`code_files` follows imports through the repository: module-level and inside functions,
packages' ``__init__`` included, as Python would load them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from common.paths import repo_root

CODE_ROOTS = ("common", "papers")
# Files a module reads at run time (package data), which a stage loading it depends on too.
DATA_FILES = {
    "common/mcu/__init__.py": ("common/mcu/csrc", "common/mcu/target"),
    "common/papers.py": ("papers/registry.yaml",),
}


def module_file(module: str, root: Path) -> Path | None:
    """The repository file of ``module`` (a package's ``__init__.py``), if it is one of ours."""
    if module.split(".")[0] not in CODE_ROOTS:
        return None
    base = root / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports anywhere (``from x import y`` also yields ``x.y``, which is
    a module when ``y`` is a submodule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@cache
def _closure(module: str, root: Path) -> frozenset[Path]:
    seen: set[Path] = set()
    todo = [module]
    done: set[str] = set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            path = module_file(prefix, root)
            if path is None or path in seen:
                continue
            seen.add(path)
            todo.extend(_imports(path, prefix))
    return frozenset(seen)


def code_files(module: str, root: Path | None = None) -> list[str]:
    """The repository files a run of ``module`` can load, relative to the repository."""
    root = (root or repo_root()).resolve()
    return sorted(str(p.relative_to(root)) for p in _closure(module, root))


def covered(path: str, deps: tuple[str, ...]) -> bool:
    """Whether ``path`` is one of ``deps`` or inside a folder of them."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def data_files(files: list[str], declared: list[str] = ()) -> list[str]:
    """The package data (:data:`DATA_FILES`) that loading ``files`` reads, less what a folder in
    ``declared`` covers already."""
    data = {d for f in files for d in DATA_FILES.get(f, ())}
    return sorted(d for d in data if not covered(d, tuple(declared)))
