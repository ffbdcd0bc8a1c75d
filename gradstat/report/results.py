"""What a report produces: its analyses (:class:`Record`) and :class:`ReportResult`.

:class:`ReportResult` is a :class:`gradstat.sweep.RunResult` (the fields a sweep's result
has too) with the analyses that succeeded and failed and a note on the plots;
:class:`ReportInterrupted` is the sweep's :class:`~gradstat.sweep.Interrupted` for a
report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gradstat.analysis import AnalysisResult
from gradstat.sweep.config import EstimatorSpec, NetworkCase
from gradstat.sweep.results import Interrupted, RunResult


@dataclass(frozen=True)
class Record:
    """One analysis of a report: a network, an estimator and :func:`analyze`'s result."""

    case: NetworkCase
    estimator: EstimatorSpec
    result: AnalysisResult = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class ReportResult(RunResult):
    """What :func:`gradstat.run_report` did; besides the fields of
    :class:`gradstat.sweep.RunResult` (``wall_time`` runs from the start to the plots
    drawn; the two summary files take a moment more):

    Attributes
    ----------
    records : tuple of Record
        The analyses that succeeded, in the order of the config (networks, then
        estimators), including those reused by ``resume``.
    plots_note : str or None
        Why the plots were not drawn (None when they were).
    failures : tuple of (NetworkCase, EstimatorSpec, str)
        The analyses that failed, with their error messages.
    """

    records: tuple[Record, ...] = field(repr=False)
    plots_note: str | None
    failures: tuple[tuple[NetworkCase, EstimatorSpec, str], ...] = field(default=(), repr=False)

    @property
    def n_done(self) -> int:
        return len(self.records) + len(self.failures)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


class ReportInterrupted(Interrupted):
    """Raised by :func:`gradstat.run_report` on Ctrl-C once the partial report is
    written; ``result`` is the partial :class:`ReportResult`."""

    unit = ("analysis", "analyses")
    resume = "partial report in {out_dir} (finish it with --resume)"
