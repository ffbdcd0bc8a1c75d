"""Network files (:mod:`gradstat.storage`, :mod:`gradstat.network_io`): round trips and
every way a file can be refused."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs
from gradstat.report import NetworkFile


def test_save_load_round_trip_is_bit_identical(tmp_path):
    net = gs.BinaryNetwork.random((3, 4, 2, 2), loss="xent", scale=2.5, seed=11)
    path = gs.save_network(net, tmp_path / "net.bin")  # used as given: no suffix appended
    assert path == tmp_path / "net.bin" and path.exists()
    back = gs.load_network(path)
    assert back.sizes == net.sizes and back.loss == net.loss
    assert back.params.tobytes() == net.params.tobytes()
    net.save(tmp_path / "again.npz")
    assert gs.BinaryNetwork.load(tmp_path / "again.npz").params.tobytes() == net.params.tobytes()
    assert NetworkFile(tmp_path / "again.npz").cases()[0].label == "again"


def _arrays(**changes):
    arrays = {
        "format": np.array("gradstat.network"),
        "version": np.array(1),
        "sizes": np.array([2, 2, 1]),
        "loss": np.array("mse"),
        "params": np.zeros(9),
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        (_arrays(params=None), ValueError, "missing key(s) ['params']"),
        (_arrays(extra=np.zeros(1)), ValueError, "unknown key(s) ['extra']"),
        (_arrays(params=np.zeros(8)), ValueError, "is inconsistent: params must have shape (9,)"),
        (_arrays(params=np.zeros((3, 3))), ValueError, "params must have shape (9,)"),
        (_arrays(sizes=np.array([2, 0, 1]), params=np.zeros(3)), ValueError,
         "stochastic layer of width 0"),
        (_arrays(sizes=np.array([2.0, 2.0, 1.0])), TypeError, "'sizes' must hold integers"),
        (_arrays(sizes=np.array([[2, 2, 1]])), ValueError, "'sizes' must be 1-d"),
        (_arrays(params=np.zeros(9, dtype=np.float32)), TypeError, "'params' must be float64"),
        (_arrays(params=np.full(9, np.nan)), ValueError, "NaN or infinite"),
        (_arrays(loss=np.array("hinge")), ValueError, "loss must be one of"),
        (_arrays(loss=np.array(3)), TypeError, "'loss' must be a string"),
        (_arrays(format=np.array("other")), ValueError, "'format' is 'other'"),
        (_arrays(version=np.array(2)), ValueError, "layout version 2 is not supported"),
        (_arrays(params=np.array([object()] * 9, dtype=object)), ValueError,
         "'params' is a pickled object array"),
    ],
)  # fmt: skip
def test_malformed_network_files_are_refused(tmp_path, arrays, error, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(error) as exc:
        gs.load_network(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    good = gs.BinaryNetwork.random((2, 2, 1), seed=0).save(tmp_path / "good.npz").read_bytes()
    path = tmp_path / "bad.npz"
    for n_bytes in (0, 10, len(good) // 2, len(good) - 1):
        path.write_bytes(good[:n_bytes])
        with pytest.raises(ValueError, match="truncated or not an .npz archive"):
            gs.load_network(path)
    np.save(tmp_path / "single.npy", np.zeros(9))
    with pytest.raises(ValueError, match="single .npy array"):
        gs.load_network(tmp_path / "single.npy")
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle: never loaded
    with pytest.raises(ValueError, match="truncated or not an .npz archive"):
        gs.load_network(path)
