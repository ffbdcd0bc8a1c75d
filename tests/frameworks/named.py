"""A module-level framework estimator, for grids that name estimators by import path."""

from __future__ import annotations

import written

import gradstat as gs

st_sigmoid_jax = gs.jax_estimator(written.surrogate_st(written.jax_ops(), "sigmoid"))
