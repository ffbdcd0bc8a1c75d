"""The integer codes the jitted kernels dispatch on, one per built-in estimator.

Kernels cannot take estimator objects, so each registered estimator carries one of these
codes (:attr:`gradstat.estimators.Estimator.code`); this table is the only place they are
defined.
"""

ST = 0
ST_SIGMOID = 1
STS = 2
REINFORCE = 3
ST_TEMPERED = 4
REINMAX = 5
LEG = 6
MUPROP = 7
ARM = 8
DISARM = 9
GUMBEL_ST = 10
CONCRETE = 11
NOISY_RECTIFIER = 12
REBAR = 13
REINFORCE_LOO = 14
PSA = 15
GUMBEL_RAO = 16

SURROGATES = (ST, ST_SIGMOID, STS, ST_TEMPERED, REINMAX)
"""Straight-through-type estimators: backprop with a surrogate ``dh/da`` per unit."""

SCORE = "score"
SURROGATE = "surrogate"
"""Families of the message engine: REINFORCE's loss moments, or a surrogate's signal."""
