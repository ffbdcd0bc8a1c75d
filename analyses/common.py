"""Shared plumbing for the analysis scripts: arguments, output folder, tables, figures.

Every analysis is run as ``python analyses/<name>.py [--quick] [--out DIR]`` and writes
``analyses/results/<name>/`` (or ``DIR``): ``summary.md`` with the numbers, CSV tables
and PNG figures. ``--quick`` is a smoke test small enough for CI; the full mode produces
the numbers quoted in ``analyses/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Run:
    """One analysis run: its name, mode, output folder and the Markdown it accumulates."""

    name: str
    quick: bool
    out: Path
    seed: int
    started: float = field(default_factory=time.perf_counter)
    lines: list[str] = field(default_factory=list)

    def section(self, title: str, text: str = "") -> None:
        """Add a Markdown section to ``summary.md``."""
        self.lines += [f"## {title}", "", text.strip(), ""] if text else [f"## {title}", ""]

    def text(self, text: str) -> None:
        self.lines += [text.strip(), ""]

    def table(self, rows: Sequence[Mapping[str, Any]], *, fmt: str = ".4g") -> None:
        """Add ``rows`` to ``summary.md`` as a Markdown table."""
        if not rows:
            return
        keys = list(rows[0])
        self.lines.append("| " + " | ".join(keys) + " |")
        self.lines.append("|" + "---|" * len(keys))
        for row in rows:
            cells = [format(v, fmt) if isinstance(v, float) else str(v) for v in row.values()]
            self.lines.append("| " + " | ".join(cells) + " |")
        self.lines.append("")

    def csv(self, filename: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Write ``rows`` (dicts with the same keys) to ``filename`` in the output folder."""
        rows = list(rows)
        path = self.out / filename
        with path.open("w", newline="") as fh:
            if rows:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        return path

    def json(self, filename: str, data: Any) -> Path:
        path = self.out / filename
        path.write_text(json.dumps(data, indent=2, default=float) + "\n")
        return path

    def figure(self, filename: str, fig: Any) -> Path | None:
        """Save a matplotlib figure (returns None, and says so, without matplotlib)."""
        path = self.out / filename
        fig.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.lines += [f"![{filename}]({filename})", ""]
        return path

    def finish(self, title: str) -> Path:
        """Write ``summary.md`` with a header stating the mode and the wall time."""
        elapsed = time.perf_counter() - self.started
        mode = "quick (smoke test)" if self.quick else "full"
        head = [f"# {title}", "", f"Mode: {mode}; seed {self.seed}; {elapsed:.1f} s.", ""]
        path = self.out / "summary.md"
        path.write_text("\n".join(head + self.lines))
        return path


def start(name: str, description: str, argv: Sequence[str] | None = None) -> Run:
    """Parse ``--quick``, ``--out`` and ``--seed`` and create the output folder."""
    parser = argparse.ArgumentParser(prog=f"analyses/{name}.py", description=description)
    parser.add_argument("--quick", action="store_true", help="small smoke-test run")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="master seed")
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / name / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    return Run(name=name, quick=args.quick, out=out, seed=args.seed)


def exact_variants(n_layers: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, estimator, options)`` for every registered estimator with exact moments on
    ``n_layers`` stochastic layers, REINFORCE once per baseline (none, mean, optimal)."""
    import gradstat as gs

    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in gs.available_estimators():
        if gs.get_estimator(name).exact_engine(n_layers) is None:
            continue
        if name == "reinforce":
            for baseline in ("none", "mean", "optimal"):
                out.append((f"reinforce[{baseline}]", name, {"baseline": baseline}))
        else:
            out.append((name, name, {}))
    return out


def group_means(
    rows: Sequence[Mapping[str, Any]], by: Mapping[str, Sequence[Any]], keys: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per combination of the values in ``by`` (in that order): the NaN-ignoring
    means of ``keys`` over the rows that match it."""
    import itertools

    import numpy as np

    out = []
    for combo in itertools.product(*by.values()):
        match = dict(zip(by, combo))
        sel = [r for r in rows if all(r[k] == v for k, v in match.items())]
        out.append({**match, **{k: float(np.nanmean([r[k] for r in sel])) for k in keys}})
    return out


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean over seeds and the half-width of its 95% Student-t interval (NaN for one seed)."""
    import numpy as np
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), float("nan")
    half = student_t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)


def pyplot() -> Any:
    """``matplotlib.pyplot`` with a non-interactive backend (the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
