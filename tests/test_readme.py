"""The README's examples run as doctests: what it shows is what linvae prints."""

import doctest
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _pycon_blocks(text):
    """The ```pycon blocks of a Markdown text, in order, as one doctest string."""
    return "\n".join(re.findall(r"```pycon\n(.*?)```", text, flags=re.DOTALL))


@pytest.mark.usefixtures("one_torch_thread")
def test_readme_examples_run_as_written():
    source = _pycon_blocks(README.read_text(encoding="utf-8"))
    test = doctest.DocTestParser().get_doctest(source, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0
