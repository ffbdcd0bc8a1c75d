"""One task's result, stored in ``tasks.jsonl`` and read back bit for bit."""

from __future__ import annotations

import json

import numpy as np

import gradstat as gs
from gradstat.sweep import decode_result, encode_result


def test_results_round_trip_bit_for_bit():
    net = gs.BinaryNetwork.random((3, 3, 2, 1), seed=5)
    x, t = np.ones(3), np.zeros(1)
    for r in (
        gs.analyze(net, x, t, "reinforce", baseline=0.5),
        gs.analyze(net, x, t, "st", method="mc", n_samples=100, seed=2),
        gs.analyze(gs.BinaryNetwork((2, 2, 1)), np.zeros(2), np.zeros(1), "st"),  # nan, inf
    ):
        back = decode_result(json.loads(json.dumps(encode_result(r), allow_nan=False)))
        assert json.dumps(back.to_dict()) == json.dumps(r.to_dict())
        for name in ("gradient", "mean", "var", "sign_probability"):
            assert getattr(back, name).tobytes() == getattr(r, name).tobytes()


def test_results_stored_before_the_uncalibrated_field_still_load():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=1)
    r = gs.analyze(net, np.ones(2), np.zeros(1), "st")
    stored = json.loads(json.dumps(encode_result(r), allow_nan=False))
    del stored["uncalibrated"]
    assert decode_result(stored).uncalibrated is None
