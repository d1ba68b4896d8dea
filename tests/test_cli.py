"""The commands share one layout: ``linvae <name>`` and ``python -m linvae.<name>`` run the same
``main``, and every usage error is one line with exit status 2."""

import importlib
import subprocess
import sys

import pytest

from linvae._cli import COMMANDS, EXIT_USAGE, dispatch


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_the_same_layout(name):
    module = importlib.import_module(COMMANDS[name][0])
    assert f"python -m linvae.{name}" == module.PROG
    for attribute in ("build_parser", "run", "main"):
        assert callable(getattr(module, attribute)), attribute
    main_module = importlib.import_module(f"linvae.{name}.__main__")
    assert main_module.main is module.main


#: Arguments a command requires before it looks at the others.
REQUIRED = {"audit": ["model.npz", "--beta", "1"]}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_bad_flag_is_one_line_and_exit_2_in_every_command(name, capsys):
    assert dispatch([name, *REQUIRED.get(name, []), "--no-such-flag"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err


def test_dispatch_names_the_commands(capsys):
    assert dispatch(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert dispatch(["plot"]) == EXIT_USAGE
    assert "unknown command 'plot'" in capsys.readouterr().err
    assert dispatch([]) == EXIT_USAGE


def test_python_m_linvae_runs_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "linvae", "analytic", "--betas", "1", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_prints_its_help(name, capsys):
    assert dispatch([name, "--help"]) == 0
    assert f"usage: python -m linvae.{name}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name", ["benchmarks.__main__", "benchmarks.analytic", "benchmarks.compare_quality",
             "benchmarks.moments", "benchmarks.recipe_changes", "benchmarks.recipe_phases",
             "benchmarks.training"],
)  # fmt: skip
def test_every_benchmark_prints_its_help(name, capsys):
    """Benchmarks reuse the compare flags with some left out: their help must still print."""
    module = importlib.import_module(name)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out
