"""The report's table of where each estimator's noise comes from (``report.md``).

For a network with two or more stochastic layers, every exactly analysed estimator's
variance over the stochastic layers is split by the layer whose sampling causes it
(:func:`gradstat.noise_decomposition`), one row per estimator and one column per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradstat.noise import noise_decomposition
from gradstat.report.results import Record

SOURCE_MAX_STATES = 2**20
"""The most noise states per example the report enumerates for the split (it keeps every
state's estimate: far more memory than a moment pass, so less than the default cap)."""


def noise_table(records: Sequence[Record]) -> str | None:
    """A Markdown table of the stochastic layers' variance shares by source layer, or None
    for a network with one stochastic layer (all of it comes from that layer) or no exact
    analysis. An estimator whose noise cannot be enumerated up to
    :data:`SOURCE_MAX_STATES` gets a row saying why."""
    exact = [r for r in records if r.result.method == "exact"]
    if not exact or exact[0].case.net.n_layers < 2:
        return None
    n_layers = exact[0].case.net.n_layers
    sources = [f"layer{k}" for k in range(1, n_layers + 1)]
    lines = ["| estimator | " + " | ".join(sources) + " |", "|" + "---|" * (n_layers + 1)]
    for r in exact:
        case, spec = r.case, r.estimator
        try:
            d = noise_decomposition(case.net, case.x, case.t, spec.name,
                                    max_states=SOURCE_MAX_STATES, **spec.options)  # fmt: skip
        except ValueError as err:
            why = " ".join(str(err).split("; ")[0].split()).replace("|", "\\|")
            lines.append(f"| {spec.label} | " + " | ".join(["n/a"] * n_layers) + f" ({why}) |")
            continue
        cells = [f"{v:.3f}" for v in d.shares("stochastic")]
        lines.append(f"| {spec.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
