"""Tests of gradstat.stats.results: confidence intervals and dictionaries of the results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
from stats_helpers import _gaussian_draws, _good, _random_cov

from gradstat.stats import UnbiasednessResult, unbiasedness_test, variance_interval, wilson_interval


def test_confidence_interval_is_bonferroni():
    x = _gaussian_draws(23, 30, _random_cov(24, 3))
    res = unbiasedness_test(x, np.zeros(3))
    low, high = res.confidence_interval(0.9)
    q = scipy.stats.t.isf(0.1 / 6, 29)
    np.testing.assert_allclose(low, res.bias - q * res.bias_se, rtol=1e-12)
    np.testing.assert_allclose(high, res.bias + q * res.bias_se, rtol=1e-12)
    cov = np.diag([1.0, 4.0, 9.0])
    known = unbiasedness_test(x, np.zeros(3), cov=cov)
    q = scipy.stats.norm.isf(0.05 / 6)
    np.testing.assert_allclose(known.confidence_interval().high - known.bias, q * known.bias_se)


def test_result_to_dict_is_json_and_repr_is_short():
    x = _gaussian_draws(25, 30, np.eye(3))
    res = unbiasedness_test(x, np.zeros(3))
    d = res.to_dict()
    json.dumps(d)
    assert d["df"] == [3.0, 27.0] and len(d["bias"]) == 3 and d["coordinate_pvalues"] is None
    assert isinstance(res, UnbiasednessResult)
    assert ", bias=" not in repr(res) and "pvalue=" in repr(res)
    with pytest.raises(AttributeError):
        res.pvalue = 0.5  # frozen
    holm = unbiasedness_test(x[:2], np.zeros(3))
    json.dumps(holm.to_dict())
    for obj in (variance_interval(x), variance_interval(x[:, 0]), wilson_interval(3, 10)):
        json.dumps(obj.to_dict())


def test_confidence_interval_rejects_bad_level():
    res = unbiasedness_test(_good(), np.zeros(2))
    with pytest.raises(ValueError, match="confidence_level"):
        res.confidence_interval(1.0)
