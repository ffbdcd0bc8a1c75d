"""The PyTorch snippet of the documentation (docs/guides/frameworks.md) and the training-loop
example run as written."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

import gradstat as gs
from gradstat.testing import check_unbiased

ROOT = Path(__file__).resolve().parents[2]


def test_documented_snippet() -> None:
    torch = pytest.importorskip("torch")
    guide = (ROOT / "docs" / "guides" / "frameworks.md").read_text(encoding="utf-8")
    for line in (
        "h = (u < p).double() + (p - p.detach())       # Bernoulli forward, sigmoid backward",
        "est = gs.torch_estimator(st_sigmoid)              # or gs.jax_estimator(f) for JAX",
        "net = gs.BinaryNetwork.random((4, 10, 1), seed=0)",
    ):
        assert line in guide

    def st_sigmoid(theta, x, t, u, net):  # noqa: ANN001, ANN202
        (W, b), (Wo, bo) = gs.layer_views(theta, net)
        p = torch.sigmoid(W @ x + b)
        h = (u < p).double() + (p - p.detach())  # Bernoulli forward, sigmoid backward
        return 0.5 * ((Wo @ h + bo - t) ** 2).sum()

    est = gs.torch_estimator(st_sigmoid)
    net = gs.BinaryNetwork.random((4, 10, 1), seed=0)
    r = gs.analyze(net, np.ones(4), np.zeros(1), est)
    assert r.method == "exact"
    assert np.allclose(r.mean, gs.analyze(net, np.ones(4), np.zeros(1), "st_sigmoid").mean,
                       rtol=0, atol=1e-12)  # fmt: skip
    assert "computed exactly" in check_unbiased(est, (net, np.ones(4), np.zeros(1))).describe()


def test_training_loop_example(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    runpy.run_path(str(ROOT / "examples" / "torch_training_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line[:2] == "| "}
    # The model's own forward, analysed through the adapter, is the built-in st_sigmoid.
    assert rows["model_st_sigmoid"].split("|")[3:] == rows["st_sigmoid"].split("|")[3:]
    assert "unbiased = True" in out
