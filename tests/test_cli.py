"""The command line: ``gradstat`` / ``python -m gradstat``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradstat as gs
from gradstat import cli
from gradstat.analysis import DEFAULT_MC_SAMPLES
from gradstat.claims.registry import Claim, ClaimResult, claims_text_table
from gradstat.cli import build_parser, main

ROOT = Path(gs.__file__).resolve().parent.parent
# What the documentation states about the command line and the building blocks.
REPORTS_GUIDE = (ROOT / "docs" / "guides" / "reports.md").read_text(encoding="utf-8")
OWN_ESTIMATORS_GUIDE = (ROOT / "docs" / "guides" / "own-estimators.md").read_text(encoding="utf-8")


def _rows(out: str) -> list[list[str]]:
    """The cells of the Markdown rows of a printed table (header and rule excluded)."""
    return [
        [c.strip() for c in line.split("|")[1:-1]]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| estimator")
    ]


def test_default_summary_names_its_methods_and_marks_the_rectifier(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "(4, 3, 3, 2)" in out and "method exact" not in out
    assert (
        "Method auto: exact where the moments can be enumerated (discrete noise) or integrated "
        "per unit (Gumbel estimators), Monte Carlo "
        f"({DEFAULT_MC_SAMPLES} draws, seed 0; value ± standard error) otherwise; the method "
        "column says which." in out
    )
    assert "| estimator | method | bias_norm |" in out
    for name in gs.available_estimators():
        assert f"| {name}" in out
    # The numbers are analyze's, to the printed precision, with the method that gave them.
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    r = gs.analyze(net, np.ones(4), np.zeros(2), "st_sigmoid")
    assert f"| st_sigmoid | exact | {r.bias_norm:.4g} | {r.relative_bias:.4g} |" in out
    assert "| gumbel_st | exact | " in out  # states and one integral per unit
    # The noisy rectifier is compared with its own mean: marked, with a footnote.
    assert "| noisy_rectifier † | mc | 0 ± 0 | 0 ± 0 |" in out
    assert out.count("† noisy_rectifier is compared not with the binary network's exact") == 2
    assert "`own-mean`, the Monte Carlo mean of its own draws" in out


def test_the_default_estimators_give_distinct_rows(capsys):
    assert main([]) == 0
    rows = _rows(capsys.readouterr().out)
    labels = [row[0] for row in rows]
    assert "st_tempered tau=0.5" in labels and "st_tempered tau=2" in labels
    assert "st_tempered" not in labels  # tau = 1: st_sigmoid's row again
    for scope in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):
        numbers = [tuple(row[2:]) for row in scope]
        assert len(set(numbers)) == len(numbers), "two estimators print the same row"


def test_summary_options_and_monte_carlo(capsys):
    argv = ["summary", "--sizes", "2,3,3", "--loss", "xent", "--estimators", "st", "sts",
            "--method", "mc", "--n-samples", "200"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "±" in out and "| sts | mc |" in out and "| reinforce" not in out
    assert "Method: Monte Carlo (200 draws, seed 0; value ± standard error)." in out
    assert main(["summary", "--sizes", "2,2,1", "--estimators", "st", "--method", "exact"]) == 0
    out = capsys.readouterr().out
    assert "Method: exact (every moment enumerated)." in out and "†" not in out


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"gradstat {gs.__version__}\n"


def test_help_and_docs_state_the_default_number_of_draws(capsys):
    for command in ("summary", "report", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"(default {DEFAULT_MC_SAMPLES}" in text, command
    assert f"`--n-samples` (default {DEFAULT_MC_SAMPLES} Monte Carlo draws" in REPORTS_GUIDE
    assert (
        f"n_samples = 4000           # Monte Carlo draws per analysis (default {DEFAULT_MC_SAMPLES}"
        in REPORTS_GUIDE
    )


def test_docs_name_the_attributes_of_a_forward_pass():
    fp = gs.forward_pass(gs.BinaryNetwork.random((2, 2, 1), seed=0), np.ones(2), [0.0],
                         np.full(2, 0.5))  # fmt: skip
    guide = OWN_ESTIMATORS_GUIDE
    passage = guide[guide.index("gs.forward_pass(net, x, t, u)") :][:250]
    for name in re.findall(r"`(\w+)`", passage):
        if name not in ("u", "ForwardPass"):
            assert hasattr(fp, name), name
    assert "`dloss_dy`" in passage and "its loss, `dC/dy`" not in guide


def test_retries_are_explained_the_same_way_everywhere(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "reruns of a lost analysis, the same on every executor" in text
    assert "allowed-failures" in text and "Exit status: 0 when every analysis succeeded" in text
    stated = " ".join(REPORTS_GUIDE.split())
    assert "`--retries N` (default 2) means the same on every executor" in stated
    assert "the same on every executor" in " ".join(gs.sweep.__doc__.split())


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """Bad inputs on disk: a TOML file that is not TOML, a broken network, a file as --out."""
    (tmp_path / "bad.toml").write_text("method = = 1\n")
    (tmp_path / "typo.toml").write_text("[[networks]]\nsizes = [2, 2, 1]\nscale = 'big'\n")
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    (tmp_path / "file").write_text("")
    return {name: str(tmp_path / name) for name in ("bad.toml", "typo.toml", "broken.npz", "file")}


BAD = [
    (["summary", "--sizes", "4,x,2"], "comma-separated integers"),
    (["summary", "--sizes", "4,0,2"], "stochastic layer of width 0"),
    (["summary", "--estimators", "nope"], "invalid choice"),
    (["summary", "--method", "mc", "--n-samples", "1"], "n_samples must be >= 2"),
    (["summary", "--loss", "hinge"], "invalid choice"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["report", "--n-samples", "1"], "'n_samples' must be >= 2"),
    (["report", "--n-samples", "many"], "invalid int value: 'many'"),
    (["report", "--method", "exact", "--n-samples", "100"], "only used with method 'mc'"),
    (["report", "--config", "{missing}"], "FileNotFoundError"),
    (["report", "--config", "{bad.toml}"], "is not valid TOML"),
    (["report", "--config", "{typo.toml}"], "'scale' must be a finite"),
    (["report", "--network", "{missing}"], "does not exist"),
    (["report", "--network", "{broken.npz}"], "broken.npz"),
    (["report", "--sizes", "2,2,1", "--out", "{file}"], "FileExistsError"),
    (["report", "--sizes", "2,2,1", "--out", "{file}/sub"], "NotADirectoryError"),
    (["report", "--retries", "-1"], "retries must be an int >= 0"),
    (["report", "--mc-seed", "-1"], "'mc_seed' must be an int >= 0"),
    (["report", "--scale", "nan"], "'scale' must be a finite number"),
    (["report", "--seeds", "0", "0"], "'seeds' repeats a seed"),
    (["report", "--estimators", "reinforce:baseline=wat"], "baseline"),
    (["report", "--estimators", "st:tau"], "must be key=value"),
    (["report", "--estimators", "st", "st"], "lists the same estimator twice"),
    (["sweep", "--workers", "0"], "expected a positive integer, got 0"),
    (["sweep", "--workers", "2", "--dask-local", "2"], "not allowed with argument"),
    (["claims", "--claim", "nope"], "unknown claim(s) ['nope']"),
    (["claims", "--max-examples", "0"], "expected a positive integer"),
    (["claims", "--format", "html"], "invalid choice: 'html'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _m in BAD])
def test_bad_command_lines_end_with_one_line_and_status_2(argv, message, files, tmp_path, capsys):
    names = {**files, "missing": str(tmp_path / "missing")}
    argv = [re.sub(r"\{([^}]+)\}", lambda m: names[m.group(1)], a) for a in argv]
    if argv[0] in ("report", "sweep") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    assert stop.value.code == 2
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err and message in captured.err
    assert re.match(r"gradstat( \w+)?: (unexpected )?error: ", captured.err)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_memory_and_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cli, "analyze", out_of_memory)
    with pytest.raises(SystemExit) as stop:
        main(["summary", "--sizes", "2,2,1", "--estimators", "st"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "gradstat summary: error: out of memory\n"

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a\nb")

    monkeypatch.setattr(cli, "analyze", bug)
    with pytest.raises(SystemExit):
        main(["summary", "--sizes", "2,2,1", "--estimators", "st"])
    assert capsys.readouterr().err == "gradstat summary: unexpected error: ZeroDivisionError: a b\n"


def test_a_real_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gradstat", "report", "--config", str(tmp_path / "no.toml")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "No such file or directory" in done.stderr


def _claim(key: str, statement: str) -> Claim:
    return Claim(key, statement, "A (2000)", "none", check=lambda **_: None)


def test_claims_text_table_fits_the_terminal():
    claims = {
        "short": _claim("short", "A statement that fits."),
        "long_key_here": _claim("long_key_here", "word " * 200),
    }
    results = [
        ClaimResult("short", "proved", "", 12),
        ClaimResult("long_key_here", "holds only under conditions", "", 3),
    ]
    wide = claims_text_table(results, width=120, claims=claims).splitlines()
    assert wide[0].split() == ["claim", "verdict", "examples", "cex", "statement"]
    assert wide[1].split()[:4] == ["short", "proved", "12", "0"]
    assert wide[1].endswith("A statement that fits.")
    assert wide[2].endswith("...") and "holds only under conditions" in wide[2]
    assert all(len(line) <= 120 for line in wide)
    assert "\n".join(wide[3:]).startswith("2 claims: 1 proved, 1 holds only under conditions.")
    narrow = claims_text_table(results, width=60, claims=claims).splitlines()
    assert all(len(line) <= 60 for line in narrow)
    assert narrow[3] == "    A statement that fits." and narrow[5].endswith("...")
    with pytest.raises(ValueError, match="unknown claim"):
        claims_text_table(results)


def test_claims_print_a_compact_table_or_markdown(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    argv = ["claims", "--claim", "sts", "--max-examples", "2"]
    assert main([*argv, "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 90 for line in out.splitlines())
    assert out.splitlines()[2].split()[:2] == ["sts", "proved"] and "| " not in out
    assert main([*argv, "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "| claim | source | conditions | verdict | evidence |" in out
    assert main(argv) == 0  # auto: Markdown when the output is not a terminal
    assert "| claim | source |" in capsys.readouterr().out


def test_every_subcommand_parses_its_defaults():
    parser = build_parser()
    args = parser.parse_args(["claims"])
    assert args.format == "auto"
    assert parser.parse_args(["report"]).retries == parser.parse_args(["sweep"]).retries == 2


@pytest.mark.parametrize(
    "argv",
    [["report", "--sizes", "2,0,1"], ["claims", "--claim", "no_such_claim"]],
)
def test_bad_input_is_refused_before_compiling_ahead(argv, monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "compile_ahead_for", lambda *a, **k: calls.append(a))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and calls == []
    assert capsys.readouterr().err.count("\n") == 1
