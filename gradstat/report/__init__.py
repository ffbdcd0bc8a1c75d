"""``gradstat report``: every registered estimator compared on a suite of networks.

A report analyses each network of a suite with each estimator (:func:`gradstat.analyze`)
and writes, into one output folder:

* ``results.csv``: one row per network x estimator x scope x metric, written
  incrementally (flushed after each analysis, so an interrupted run keeps what it did);
* ``tasks.jsonl``: one line per analysis with its whole result, which ``resume`` reads;
* ``results.json``: the same rows with the configuration and the networks;
* ``report.md``: Markdown tables of every metric, over all parameters and per layer;
* ``networks/<label>.npz``: every analysed network (:mod:`gradstat.storage`), so that a
  report can be rerun on the same network (``gradstat report --network FILE``);
* PNG plots (:mod:`gradstat.report.plots`, needs the ``plot`` extra).

The **default suite** is five architectures, each with seeds 0 and 1 and weight scale 1
(:meth:`gradstat.BinaryNetwork.random`): ``(4, 3, 1)`` mse, ``(4, 3, 3, 2)`` mse,
``(4, 3, 3, 3, 2)`` bce, ``(3, 4, 4, 3)`` xent and ``(4, 6, 1)`` linear. Every network
sees one example: the input ``x = 1`` (all ones) and the target of
:func:`default_target` (``0`` for mse, ``0.5`` for bce, class 0 for xent, ``1`` for
linear). The estimators are every registered one (:func:`gradstat.available_estimators`),
each with its default options, except ``reinforce``, which appears once per baseline
``none``, ``mean`` and ``optimal``, and ``st_tempered``, which appears with ``tau = 0.5``
and ``tau = 2`` (at its default ``tau = 1`` it is ``st_sigmoid``) (:data:`ESTIMATOR_VARIANTS`).
The noisy rectifier is a different model, measured against its own reference
(``AnalysisResult.reference``); the tables and plots mark it. With ``method="auto"``
every metric is exact where the estimator's noise is discrete.

A configuration is a frozen :class:`ReportConfig`, built in Python, from a TOML file
(:meth:`ReportConfig.from_toml`) or from command-line options
(:meth:`ReportConfig.from_args`); :func:`run_report` runs it on :func:`gradstat.sweep`
(one task per network and estimator, serially by default, or on a process pool or a Dask
cluster), then writes the summary files and plots.

The package builds on :mod:`gradstat.sweep`, which never imports it: the configuration
types are :mod:`gradstat.sweep.config`'s and are re-exported here. :mod:`.results`
(:class:`Record`, :class:`ReportResult`), :mod:`.noise_sources` (the table of where the
noise comes from), :mod:`.markdown` (``report.md``), :mod:`.plots` (the PNG plots) and
:mod:`.run` (:func:`run_report`), each importing only those before it.
"""

from gradstat.report import plots
from gradstat.report.markdown import PLOT_TEXT, RELATIVE_METRICS, format_report, format_table
from gradstat.report.plots import plot_bias_variance, plot_metric_vs_depth, plot_versus_samples
from gradstat.report.results import Record, ReportInterrupted, ReportResult
from gradstat.report.run import run_report
from gradstat.sweep.config import (
    DEFAULT_NETWORKS,
    ESTIMATOR_VARIANTS,
    SEEDINGS,
    EstimatorSpec,
    NetworkCase,
    NetworkFile,
    NetworkSpec,
    RandomNetworks,
    ReportConfig,
    default_estimators,
    default_target,
)
from gradstat.sweep.results import CSV_COLUMNS, result_rows, write_results_json
from gradstat.sweep.tasks import analyze_case

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_NETWORKS",
    "ESTIMATOR_VARIANTS",
    "PLOT_TEXT",
    "RELATIVE_METRICS",
    "SEEDINGS",
    "EstimatorSpec",
    "NetworkCase",
    "NetworkFile",
    "NetworkSpec",
    "RandomNetworks",
    "Record",
    "ReportConfig",
    "ReportInterrupted",
    "ReportResult",
    "analyze_case",
    "default_estimators",
    "default_target",
    "format_report",
    "format_table",
    "plot_bias_variance",
    "plot_metric_vs_depth",
    "plot_versus_samples",
    "plots",
    "result_rows",
    "run_report",
    "write_results_json",
]
