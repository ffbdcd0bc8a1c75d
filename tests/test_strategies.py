"""gradstat.strategies: arguments checked at once, draws within their bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.errors import InvalidArgument

from gradstat.strategies import extreme_logit_networks, networks, problems


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_depth": 0}, "min_depth must be an int >= 1"),
        ({"min_width": 3, "max_width": 2}, "min_width=3 is larger than max_width=2"),
        ({"max_width": 2.5}, "max_width must be an int"),
        ({"losses": ("hinge",)}, "losses must be a non-empty subset"),
        ({"losses": ()}, "losses must be a non-empty subset"),
        ({"max_weight": float("nan")}, "max_weight must be a finite number"),
        ({"min_depth": 3, "min_width": 3, "max_stochastic": 8}, "no network qualifies"),
    ],
)
def test_networks_validates_eagerly(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        networks(**kwargs)


def test_problems_and_extreme_validate_eagerly():
    with pytest.raises(InvalidArgument, match="max_batch must be an int >= 1"):
        problems(max_batch=0)
    with pytest.raises(InvalidArgument, match="max_input must be a finite number"):
        problems(max_input=-1.0)
    with pytest.raises(InvalidArgument, match="min_magnitude=9 is larger"):
        extreme_logit_networks(min_magnitude=9, max_magnitude=3)


@given(networks(min_depth=2, max_depth=3, max_width=2, losses=("xent", "bce"), max_stochastic=5))
def test_networks_respect_bounds(net):
    assert 2 <= net.n_layers <= 3 and net.n_stochastic <= 5
    assert all(1 <= w <= 2 for w in net.hidden_sizes)
    assert net.loss in ("xent", "bce") and np.all(np.abs(net.params) <= 2.0)


@given(problems(max_batch=3, max_stochastic=4))
def test_problems_are_consistent(problem):
    net, X, T = problem
    assert X.shape[1] == net.n_in and 1 <= X.shape[0] <= 3 and len(T) == X.shape[0]


@given(extreme_logit_networks(min_magnitude=30, max_magnitude=40, max_stochastic=4))
def test_extreme_networks_have_large_biases(net):
    for _, b in net.layer_slices()[:-1]:
        assert np.all(np.abs(net.params[b]) >= 30)
