"""Pages generated from gradstat's own registries when the documentation builds.

* ``generated/estimators/<family>.rst``: one page per estimator family (a module of
  :mod:`gradstat.estimators` with ``ENTRIES``): the module's docstring (the formulas),
  then each registered estimator's summary, paper, unbiasedness, noise, options and
  exact engine;
* ``generated/claims.rst``: the claims registry (statement, source, conditions);
* ``generated/config_keys.rst``: the keys of a report's TOML file, from the fields and
  docstrings of :class:`gradstat.ReportConfig` and of its network tables.

Nothing here is written by hand, so the pages cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path
from typing import Any

from numpydoc.docscrape import NumpyDocString


def _table(header: list[str], rows: list[list[str]], widths: str = "auto") -> str:
    """An RST list-table (cells may hold inline markup, never newlines)."""
    out = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        first, *rest = (" ".join(str(cell).split()) or " " for cell in row)
        out.append(f"   * - {first}")
        out += [f"     - {cell}" for cell in rest]
    return "\n".join(out) + "\n"


def _plain(text: str) -> str:
    """Plain text (a summary, a claim's statement) escaped so RST reads no markup in it."""
    return re.sub(r"([\\`*_|\[\]<>])", r"\\\1", text)


def _prose(text: str) -> str:
    """A docstring's RST with ``|`` outside inline literals escaped (``|a|`` is an
    absolute value in gradstat's docstrings, never a substitution)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("    "):  # literal blocks are indented: left as they are
            parts = re.split(r"(``.+?``)", line)
            line = "".join(p if p.startswith("``") else p.replace("|", "\\|") for p in parts)
        lines.append(line)
    return "\n".join(lines)


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def _engine(estimator: Any, n_layers: int) -> str:
    try:
        engine = estimator.exact_engine(n_layers)
    except Exception as exc:  # an engine that refuses says why
        return f"Monte Carlo ({exc})"
    return "Monte Carlo" if engine is None else f"``{engine}``"


def _families() -> list[tuple[str, Any]]:
    import gradstat.estimators as package

    out = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"gradstat.estimators.{info.name}")
        if getattr(module, "ENTRIES", None):
            out.append((info.name, module))
    return out


def estimator_pages(folder: Path) -> list[str]:
    """Write one page per estimator family; their names (without suffix)."""
    from gradstat import get_estimator

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for name, module in _families():
        doc = inspect.getdoc(module) or ""
        headline, _, body = doc.partition("\n")
        title = headline.rstrip(".") or name
        sections = []
        for entry in module.ENTRIES:
            estimator = get_estimator(entry.name)
            options = ", ".join(f"``{k}={v!r}``" for k, v in estimator.options.items())
            fields = {
                "What it does": _plain(estimator.summary),
                "Paper": _plain(estimator.reference),
                "Unbiased": "yes" if estimator.unbiased else "no",
                "Noise": estimator.noise,
                "Options (defaults)": options or "none",
                "Exact engine, one stochastic layer": _engine(estimator, 1),
                "Exact engine, two or more": _engine(estimator, 2),
            }
            sections.append(_title(f"``{estimator.name}``", "-"))
            sections.append("\n".join(f":{k}: {' '.join(v.split())}" for k, v in fields.items()))
            sections.append("")
        text = [
            f".. _family-{name}:\n",
            _title(title),
            f"Module :mod:`gradstat.estimators.{name}`.\n",
            _prose(textwrap.dedent(body).strip()) + "\n",
            *sections,
            "The exact engines are described on the :doc:`model page </model>` "
            "(section *Exact and Monte Carlo engines*); ``Monte Carlo`` means the moments "
            "are estimated by sampling, with standard errors.\n",
        ]
        (folder / f"{name}.rst").write_text("\n".join(text), encoding="utf-8")
        names.append(name)
    return names


def claims_page(path: Path) -> None:
    """Write the table of registered claims."""
    from gradstat.claims import CLAIMS

    rows = [
        [f"``{c.key}``", _plain(c.statement), _plain(c.source), _plain(c.conditions)]
        for c in CLAIMS.values()
    ]
    text = [
        _table(["key", "statement", "source", "conditions"], rows, "15 35 20 30"),
        f"{len(rows)} claims. Each is checked exactly (enumeration, closed forms) over "
        "networks drawn by Hypothesis; ``gradstat claims`` prints each verdict.\n",
    ]
    path.write_text("\n".join(text), encoding="utf-8")


def _attributes(cls: type) -> list[list[str]]:
    doc = NumpyDocString(inspect.getdoc(cls) or "")
    described = {p.name: p for p in doc["Attributes"] + doc["Parameters"]}
    rows = []
    for f in dataclasses.fields(cls):
        item = described.get(f.name)
        if f.default is not dataclasses.MISSING:
            default = f"``{f.default!r}``" if not isinstance(f.default, tuple) else "see text"
        elif f.default_factory is not dataclasses.MISSING:
            default = "see text"
        else:
            default = "required"
        rows.append(
            [
                f"``{f.name}``",
                item.type if item else "",
                default,
                " ".join(item.desc) if item else "",
            ]
        )
    return rows


def config_page(path: Path) -> None:
    """Write the reference of a report's TOML keys."""
    from gradstat.sweep.config import NetworkFile, RandomNetworks, ReportConfig

    header = ["key", "type", "default", "meaning"]
    text = [
        _title("Top-level keys", "-"),
        _table(header, _attributes(ReportConfig), "15 20 15 50"),
        "Each estimator is a string ``name`` or ``name:key=value,...``, or a table "
        "``{name = ..., options = {...}}``.\n",
        _title("``[[networks]]``: random networks", "-"),
        _table(header, _attributes(RandomNetworks), "15 20 15 50"),
        _title("``[[networks]]``: a saved network", "-"),
        _table(header, _attributes(NetworkFile), "15 20 15 50"),
    ]
    path.write_text("\n".join(text), encoding="utf-8")


def generate(app: Any) -> None:
    out = Path(app.srcdir) / "generated"
    estimator_pages(out / "estimators")
    claims_page(out / "claims.rst")
    config_page(out / "config_keys.rst")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}
