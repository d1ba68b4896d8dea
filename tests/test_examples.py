"""Every example in examples/ runs, at a tiny size, and uses only public names of linvae:
the scripts in a subprocess, the notebooks cell by cell, headless."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))

#: The tiny arguments each example runs with here (OUT is a file in a fresh folder).
TINY = {
    "audit_pytorch_vae.py": ["OUT/model.npz", "--steps", "20"],
    "representation_floor.py": ["OUT/floor.png", "--latent", "2", "--max-iterations", "2"],
}


def test_every_example_has_a_tiny_run():
    assert {path.name for path in EXAMPLES} == set(TINY)
    assert NOTEBOOKS, "the notebook example is missing"


def _code(path):
    """The source of an example: a script, or a notebook's code cells in order."""
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] for cell in cells), "commit notebooks without outputs"
    return "\n\n".join("".join(cell["source"]) for cell in cells)


@pytest.mark.parametrize("path", EXAMPLES + NOTEBOOKS, ids=lambda path: path.name)
def test_examples_import_no_private_name(path):
    tree = ast.parse(_code(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("linvae"):
            private = [part for part in node.module.split(".") if part.startswith("_")]
            private += [alias.name for alias in node.names if alias.name.startswith("_")]
            assert not private, f"{path.name} imports {node.module}: {private}"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs_at_a_tiny_size(path, tmp_path):
    argv = [arg.replace("OUT", str(tmp_path)) for arg in TINY[path.name]]
    done = subprocess.run(
        [sys.executable, str(path), *argv], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / Path(argv[0]).name).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_headless_at_a_tiny_size(path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("LINVAE_EXAMPLE_STEPS", "40")
    namespace = {}
    exec(compile(_code(path), str(path), "exec"), namespace)
    # the user's model is one point over the optimal curve, in bits and MSE
    display = namespace["display"]
    assert display.points[0]["label"] == "PyTorch β-VAE"
    assert display.ax_.get_xlabel() == "rate (bits / example)"
    assert "part of the excess" in namespace["result"]._repr_markdown_()
    assert namespace["result"].excess >= 0
