"""Every script in examples/ runs, at a tiny size, and uses only public names of linvae."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: The tiny arguments each example runs with here (OUT is a file in a fresh folder).
TINY = {
    "audit_pytorch_vae.py": ["OUT/model.npz", "--steps", "20"],
    "representation_floor.py": ["OUT/floor.png", "--latent", "2", "--max-iterations", "2"],
}


def test_every_example_has_a_tiny_run():
    assert {path.name for path in EXAMPLES} == set(TINY)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_examples_import_no_private_name(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
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
