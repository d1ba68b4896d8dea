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


def _slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation out, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_every_relative_link_and_anchor_in_the_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_slug_follows_github():
    assert _slug("Time to target: one MR-VAE against ten β-VAEs") == (
        "time-to-target-one-mr-vae-against-ten-β-vaes"
    )
    assert _slug("d ≈ 3000: 55×55 patches") == "d--3000-5555-patches"
