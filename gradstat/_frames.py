"""Results as pandas DataFrames: the dtypes every gradstat table shares, and pandas itself.

pandas is optional (``pip install "gradstat[pandas]"``) and imported only when a table is
asked for: by :meth:`gradstat.AnalysisResult.to_frame`, ``to_frame()`` of a sweep's or a
report's result, and :func:`gradstat.sweep.load_results` (``gs.read_results``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

FRAME_DTYPES: dict[str, str] = {
    "network": "string",
    "sizes": "string",
    "loss": "string",
    "seed": "Int64",
    "estimator": "string",
    "options": "string",
    "method": "string",
    "engine": "string",
    "scope": "string",
    "metric": "string",
    "value": "float64",
    "standard_error": "Float64",
    "n_samples": "Int64",
    "task": "string",
    "status": "string",
    "error": "string",
    "estimator_label": "string",
}
"""The pandas dtype of each column of :func:`rows_frame` and
:func:`gradstat.sweep.load_results`: integers stay integers (``Int64``), a missing value
(the standard error and draw count of an exact result, the error of a successful one) is
``pd.NA``; ``value`` is a plain float, NaN where a metric is undefined (e.g. sign agreement
of the ``layerwise`` engine)."""

PANDAS_HINT = 'results as DataFrames need pandas: pip install "gradstat[pandas]"'
"""The message of the ImportError raised without pandas."""


def import_pandas() -> Any:
    """The pandas module, or an ImportError saying how to install it (:data:`PANDAS_HINT`)."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(PANDAS_HINT) from exc
    return pandas


def frame_of(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Any:
    """``rows`` (dicts of Python values) as a :class:`pandas.DataFrame` of ``columns``, each
    with its :data:`FRAME_DTYPES` dtype; None, and NaN outside ``value``, become ``pd.NA``.

    Raises
    ------
    ImportError
        Without pandas (:data:`PANDAS_HINT`).
    """
    pd = import_pandas()
    data = {}
    for column in columns:
        dtype = FRAME_DTYPES[column]
        values = [row.get(column) for row in rows]
        if dtype != "float64":  # a nullable dtype: missing is NA, never NaN
            values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        data[column] = pd.array(values, dtype=dtype)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
