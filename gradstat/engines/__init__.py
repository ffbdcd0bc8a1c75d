"""The loops over states, cells, layers and draws.

``gradient``: the exact loss and gradient (joint enumeration, ``one_layer``, or
``messages``); ``joint``, ``factored`` and ``cells``: exact moments by enumerating noise
states or ARM's cells; ``messages`` and ``message_moments``: the same sums by messages over
adjacent layers; ``sampling``: Monte Carlo draws; ``choice``: which engine runs;
``moments``: runs the chosen one. Engines ask estimator objects what they need
(:class:`gradstat.estimators.EstimatorBase`) and never branch on their kind.
"""
