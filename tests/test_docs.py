"""The documentation builds with warnings as errors and executes its example pages
(skipped without the docs extra); the README's links, CITATION.cff and CHANGELOG.md agree
with the source tree."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gradstat.claims import CLAIMS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser", "myst_nb", "pydata_sphinx_theme"):
        pytest.importorskip(module)
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
    # The example pages were executed: their outputs are in the pages.
    tour = html.unescape((out / "examples" / "tour.html").read_text(encoding="utf-8"))
    assert "AnalysisResult(estimator='st_sigmoid', method='exact'" in tour
    assert tour.count("<table") >= 3  # DataFrames shown as tables
    own = html.unescape((out / "examples" / "own-estimator.html").read_text(encoding="utf-8"))
    assert "AnalysisResult(estimator='reinforce_loo', method='mc'" in own
    assert "hotelling" in own.lower() and "Traceback" not in own + tour


def test_readme_links_point_to_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        assert (ROOT / link).is_file(), link


def test_citation_and_changelog_name_this_version():
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M)
    assert re.search(rf'^version: "{re.escape(VERSION)}"$', citation, re.M)
    assert "The gradstat developers" in citation
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (\S+)", changelog, re.M)[0] == VERSION
