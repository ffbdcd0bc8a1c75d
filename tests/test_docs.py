"""The documentation builds with warnings as errors (skipped without the docs extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradstat.claims import CLAIMS

for module in ("sphinx", "numpydoc", "myst_parser", "pydata_sphinx_theme"):
    pytest.importorskip(module)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    # Offline, whatever the network: a slow or unreachable inventory would be a warning.
    env = {**os.environ, "GRADSTAT_DOCS_OFFLINE": "1"}
    run = subprocess.run([*cmd, str(DOCS), str(out)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    # The pages generated from the registries exist and are linked.
    families = sorted(p.stem for p in (out / "generated" / "estimators").glob("*.html"))
    assert "score_function" in families and "straight_through" in families
    claims = (out / "claims.html").read_text(encoding="utf-8")
    assert len(CLAIMS) > 0
    for key in CLAIMS:
        assert f'<span class="pre">{key}</span>' in claims
    keys = (out / "guides" / "reports.html").read_text(encoding="utf-8")
    for key in ("n_samples", "mc_seed", "seeding", "seeds", "scale"):
        assert f'<span class="pre">{key}</span>' in keys
    model = (out / "model.html").read_text(encoding="utf-8")
    assert "Parameter layout" in model and "descent_probability" in model
