"""Docs that cannot drift: every committed figure is listed with a command that exists, and
generated files carry their generator."""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"


def _figure_rows():
    text = (FIGURES / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- figures: begin -->")[1].split("<!-- figures: end -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1].strip("`")))
    return rows


def _command_exists(command):
    words = shlex.split(command)
    assert words[0] == "python", command
    if words[1] == "-m":
        module = ROOT.joinpath(*words[2].split("."))
        return module.with_suffix(".py").exists() or (module / "__main__.py").exists()
    return (ROOT / words[1]).is_file()


def test_every_committed_figure_is_listed_with_its_command():
    listed = dict(_figure_rows())
    on_disk = {path.name for path in FIGURES.iterdir() if path.suffix in (".png", ".svg")}
    assert set(listed) == on_disk
    for name, command in listed.items():
        assert _command_exists(command), f"{name}: {command}"


def test_every_figure_shown_in_the_docs_is_committed():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} shows a missing {target}"
