"""The layers of docs/architecture.md hold: what each package imports, read from the code, and
what importing it loads, with the libraries outside its row blocked."""

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "linvae"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: The third-party libraries a layer may not load unless its row names them.
HEAVY = ("torch", "sympy", "matplotlib", "sklearn", "dask", "pythae", "PIL", "scipy")


def _layers():
    """{package: (linvae imports allowed, third-party allowed)} from the architecture table."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text.split("<!-- layers: begin -->")[1].split("<!-- layers: end -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        rows[name] = (
            set(re.findall(r"`([^`]+)`", cells[2])),
            set(re.findall(r"`([^`]+)`", cells[3])),
        )
    return rows


LAYERS = _layers()


def _module_files(package):
    path = PACKAGE / package
    return (
        [path.with_suffix(".py")]
        if path.with_suffix(".py").exists()
        else sorted(path.rglob("*.py"))
    )


def _is_command(file: Path) -> bool:
    return file.name in ("cli.py", "__main__.py")


def _linvae_imports(file: Path):
    """The linvae packages a module imports, anywhere in it (relative imports resolved)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    parts = file.relative_to(ROOT).with_suffix("").parts  # ("linvae", "audit", "_split")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                if file.name == "__init__.py":
                    base = list(parts[: len(parts) - node.level + 1])
                names = [".".join([*base, node.module] if node.module else base)]
                if not node.module:
                    names = [f"{names[0]}.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "linvae" and len(pieces) > 1:
                found.add(pieces[1])
    return found


def test_the_table_names_every_package():
    packages = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name not in ("__init__.py", "__main__.py"))
    }
    assert packages == set(LAYERS)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_only_the_layers_below_it(package):
    allowed = LAYERS[package][0] | {package}
    for file in _module_files(package):
        if _is_command(file):
            continue  # the command layer may import anything
        extra = _linvae_imports(file) - allowed
        assert not extra, f"{file.relative_to(ROOT)} imports linvae.{sorted(extra)}"


_BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked by the layer test")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def _run(code, blocked):
    program = f"BLOCKED = {sorted(blocked)!r}\n{_BLOCKER}\n{textwrap.dedent(code)}"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr


def _below(package):
    """The package and every linvae package it may reach, directly or through others."""
    reached, todo = {package}, [package]
    while todo:
        for name in LAYERS[todo.pop()][0] - reached:
            reached.add(name)
            todo.append(name)
    return reached


@pytest.mark.slow
@pytest.mark.parametrize("package", sorted(LAYERS))
def test_importing_a_package_loads_only_the_libraries_of_its_row(package):
    blocked = set(HEAVY) - LAYERS[package][1]
    allowed = _below(package)
    _run(
        f"""
        import sys
        import linvae.{package}
        loaded = {{name.split(".")[1] for name in sys.modules if name.startswith("linvae.")}}
        extra = loaded - set({sorted(allowed)!r})
        assert not extra, f"import linvae.{package} loaded linvae.{{sorted(extra)}}"
        """,
        blocked,
    )


@pytest.mark.slow
def test_analytic_data_and_audit_work_with_torch_blocked():
    _run(
        """
        import numpy as np
        from linvae.analytic import moments, optimum, rate_distortion, spectrum
        from linvae.audit import audit
        from linvae.data import load

        X, _ = load("gaussian", n=50, eigvals=[3.0, 1.0, 0.1])
        stats = moments(X)
        params = optimum(stats.cov, 2, 0.5)
        result = audit(params, stats, 0.5)
        assert abs(result.excess) < 1e-9, result.excess
        assert rate_distortion(spectrum(stats.cov).eigvals, 2, [0.5]).loss.shape == (1,)
        """,
        {"torch", "sympy", "matplotlib", "dask", "pythae"},
    )
