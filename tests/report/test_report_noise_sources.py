"""The report's "where the noise comes from" table (:mod:`gradstat.report.noise_sources`)."""

from __future__ import annotations

import numpy as np

import gradstat as gs
from gradstat.report import EstimatorSpec, RandomNetworks, ReportConfig, default_target, run_report


def _rows(report: str, label: str) -> dict[str, list[str]]:
    """The noise-source table rows of network ``label``'s section, by estimator."""
    section = report.split(f"### {label}")[1].split("\n### ")[0].split("\n## ")[0]
    table = section.split("Where the noise comes from")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    return {r.split(" | ")[0][2:]: [c.strip(" |") for c in r.split(" | ")[1:]] for r in rows}


def test_report_splits_the_noise_of_deep_networks_only(tmp_path):
    config = ReportConfig(
        networks=(
            RandomNetworks((2, 2, 1), seeds=(0,), label="shallow"),
            RandomNetworks((2, 2, 2, 2), loss="bce", seeds=(3,), label="deep"),
        ),
        estimators=(
            EstimatorSpec("st_sigmoid"),
            EstimatorSpec("reinforce", {"baseline": "optimal"}),
            EstimatorSpec("gumbel_st"),
        ),
        n_samples=200,
        plots=False,
    )
    result = run_report(config, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "Where the noise comes from" not in report.split("### shallow")[1].split("### deep")[0]
    rows = _rows(report, "deep_seed3")
    net = gs.BinaryNetwork.random((2, 2, 2, 2), loss="bce", seed=3)
    x, t = np.ones(2), default_target(net)
    for label, name, options in (
        ("st_sigmoid", "st_sigmoid", {}),
        ("reinforce baseline=optimal", "reinforce", {"baseline": "optimal"}),
    ):
        shares = gs.noise_decomposition(net, x, t, name, **options).shares("stochastic")
        assert rows[label] == [f"{v:.3f}" for v in shares], label
    # Gumbel straight-through is exact by quadrature but cannot be split by source.
    assert set(rows) == {"st_sigmoid", "reinforce baseline=optimal", "gumbel_st"}
    assert rows["gumbel_st"][0] == "n/a"
    assert "cannot be split by source exactly" in rows["gumbel_st"][-1]
    assert result.n_failed == 0


def test_report_says_why_a_split_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("gradstat.report.noise_sources.SOURCE_MAX_STATES", 8)
    config = ReportConfig(
        networks=(RandomNetworks((2, 2, 2, 2), seeds=(0,), label="deep"),),
        estimators=(EstimatorSpec("st"),),
        plots=False,
    )
    run_report(config, tmp_path)
    row = _rows((tmp_path / "report.md").read_text(), "deep_seed0")["st"]
    assert row[0] == "n/a"
    assert "enumerates 16 noise states per example, more than max_states = 8" in row[1]
