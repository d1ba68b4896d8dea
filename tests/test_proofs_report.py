"""The proofs command: the committed reports are what it produces now; its output formats,
exit codes and atomic writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from linvae._io import atomic_write_bytes
from linvae.proofs import cli as proofs
from linvae.symbolic.claims import VERDICTS, Claim
from linvae.symbolic.report import (
    REPORTS,
    RunResult,
    render_markdown,
    render_table,
    split_reports,
    to_json,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_reports(tmp_path_factory):
    """Run ``python -m linvae.proofs --write-reports`` once, end to end, in a subprocess."""
    out = tmp_path_factory.mktemp("proofs")
    done = subprocess.run(
        [sys.executable, "-m", "linvae.proofs", "--write-reports", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done, out


@pytest.mark.slow
def test_command_runs_every_check(fresh_reports):
    done, _ = fresh_reports
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for verdict in VERDICTS:
        assert verdict in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REPORTS))
def test_committed_report_is_what_the_command_produces_now(fresh_reports, name):
    _, out = fresh_reports
    committed = (ROOT / "proofs" / name).read_text(encoding="utf-8")
    fresh = (out / name).read_text(encoding="utf-8")
    assert committed == fresh, (
        f"proofs/{name} is stale: regenerate it with `python -m linvae.proofs --write-reports proofs/`"
    )


def _claims():
    details = {"method": "proved symbolically", "evidence": "a | b"}
    return [
        Claim("A1.x", "first | statement", "holds", details),
        Claim("T1.y", "second", "fails", {**details, "correction": "fix it"}),
        Claim("RD.z", "third", "holds-with-correction", {**details, "assumptions": "β > 0"}),
    ]


@pytest.fixture
def fake_run(monkeypatch):
    """Replace the (slow) run of all claims by three fixed claims."""
    result = RunResult(_claims(), [])
    monkeypatch.setattr(proofs, "run_claims", lambda: result)
    return result


def test_json_lists_id_statement_verdict_details(fake_run, capsys):
    assert proofs.main(["--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [sorted(r) for r in records] == [["details", "id", "statement", "verdict"]] * 3
    assert [r["verdict"] for r in records] == ["holds", "fails", "holds-with-correction"]


def test_table_names_every_claim_and_its_notes(fake_run, capsys):
    assert proofs.main([]) == 0
    out = capsys.readouterr().out
    for claim in fake_run.claims:
        assert claim.id in out and claim.statement in out
    assert "correction: fix it" in out and "assumes: β > 0" in out
    assert "3 claims. the paper's claims (3): 1 holds, 1 holds-with-correction, 1 fails." in out


def test_summaries_count_the_papers_claims_apart_from_linvaes_checks():
    records = [c.to_dict() for c in _claims()]
    records[1]["details"]["source"] = "linvae"  # the failing one is an alternative we test
    text = render_markdown(records, "t")
    assert (
        "Summary: the paper's claims (2): **1** holds, **1** holds-with-correction; linvae's "
        "further checks (other gates and readings, rate-distortion facts) (1): **1** fails."
    ) in text
    assert "| linvae | fails |" in text


def test_markdown_is_written_atomically_from_the_records(fake_run, tmp_path):
    path = tmp_path / "sub" / "report.md"
    assert proofs.main(["--markdown", str(path)]) == 0
    records = [c.to_dict() for c in fake_run.claims]
    assert path.read_text(encoding="utf-8") == render_markdown(
        records, "Appendix A: every claim checked"
    )
    assert "first \\| statement" in path.read_text(encoding="utf-8")  # escaped table cell
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.md"]  # no temp file left


def test_write_reports_splits_claims_by_prefix(fake_run, tmp_path):
    assert proofs.main(["--write-reports", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(REPORTS)
    a1 = (tmp_path / "appendix-a1.md").read_text(encoding="utf-8")
    t1 = (tmp_path / "theorem1.md").read_text(encoding="utf-8")
    assert "A1.x" in a1 and "RD.z" in a1 and "T1.y" not in a1
    assert "T1.y" in t1 and "A1.x" not in t1


def test_a_check_that_raises_exits_1_and_writes_nothing(monkeypatch, tmp_path, capsys):
    result = RunResult(_claims()[:1], [("claim_broken", "ZeroDivisionError: division by zero")])
    monkeypatch.setattr(proofs, "run_claims", lambda: result)
    assert proofs.main(["--write-reports", str(tmp_path)]) == 1
    assert "claim_broken could not run: ZeroDivisionError" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_run_claims_records_a_raising_check_instead_of_crashing():
    from linvae.symbolic.report import run_claims

    def claim_broken():
        raise ArithmeticError("boom")

    result = run_claims((claim_broken, lambda: "not a claim"))
    assert result.claims == []
    assert result.errors[0] == ("claim_broken", "ArithmeticError: boom")
    assert "not a Claim" in result.errors[1][1]


def test_bad_flag_exits_2(capsys):
    assert proofs.main(["--no-such-flag"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_json_refuses_objects_it_does_not_know():
    with pytest.raises(TypeError, match="cannot serialise set"):
        to_json([{"id": "x", "details": {1, 2}}])


def test_rendering_is_deterministic_and_split_is_exhaustive():
    records = [c.to_dict() for c in _claims()]
    assert render_table(records) == render_table(records)
    split = split_reports(records)
    assert sum(len(subset) for _, subset in split.values()) == len(records)


def test_write_atomic_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "r.md"
    path.write_text("old", encoding="utf-8")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, 12345)  # not bytes: the write fails after the temp file exists
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]
