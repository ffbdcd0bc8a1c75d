"""Independent reference implementations, kept apart from the library they check.

Written from the model's definition in plain NumPy (no gradstat import), so that an
agreement with gradstat is evidence, not a tautology.
"""
