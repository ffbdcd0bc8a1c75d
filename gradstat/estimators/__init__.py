"""Gradient estimators: one module per family, and the registry of their names.

Each family module holds the family's jitted per-draw code, its option checks and its
registry entries (``ENTRIES``), with the paper it comes from cited once, in the entry.
:mod:`.registry` defines the estimator objects the engines ask what they need;
:mod:`.codes` the integer codes the kernels dispatch on; :mod:`.dispatch` the one jitted
function that computes any built-in estimate; :mod:`.user` the estimators users write.

The built-ins are registered here, in the order reports and tables list them.
"""

from gradstat.estimators import (
    arm,
    gumbel_rao,
    local_expectation,
    muprop,
    noisy_rectifier,
    psa,
    rebar,
    reinmax,
    relaxed,
    score_function,
    stochastic_times_smooth,
    straight_through,
)
from gradstat.estimators.registry import (
    Estimator,
    EstimatorBase,
    available_estimators,
    get_estimator,
    register,
)

__all__ = ["Estimator", "EstimatorBase", "available_estimators", "get_estimator", "register"]

_st, _st_sigmoid, _st_tempered = straight_through.ENTRIES
_reinforce, _reinforce_loo = score_function.ENTRIES
_gumbel_st, _concrete = relaxed.ENTRIES
for _entry in (
    _st,
    _st_sigmoid,
    *stochastic_times_smooth.ENTRIES,
    _reinforce,
    _st_tempered,
    *reinmax.ENTRIES,
    *local_expectation.ENTRIES,
    *muprop.ENTRIES,
    _reinforce_loo,
    *arm.ENTRIES,
    _gumbel_st,
    _concrete,
    *rebar.ENTRIES,
    *noisy_rectifier.ENTRIES,
    *psa.ENTRIES,
    *gumbel_rao.ENTRIES,
):
    register(_entry)
