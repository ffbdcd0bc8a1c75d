"""The network's layout and a batch, grouped as the jitted kernels read them.

numba takes named tuples of arrays as arguments (and caches functions that take them), so
the kernels pass these groups instead of long lists of arrays:

* :class:`Geometry`: the int64 arrays ``sizes, woff, boff, uoff`` of
  :mod:`gradstat.kernels.forward` (``sizes = (n_in, n_1, ..., n_L, n_out)``; ``woff[l]``,
  ``boff[l]`` the offsets of ``W_{l+1}``, ``b_{l+1}`` in ``theta``; ``uoff[l]`` the offset of
  layer ``l+1``'s units in the flat unit arrays, ``uoff[L] = N``), from :func:`geometry`;
* :class:`Batch`: what an enumeration or sampling kernel reads about a batch besides
  its geometry;
* :class:`Example`: what one draw reads about one example of it (:func:`example`).

Building a tuple is free in compiled code, and its fields are read where they are used,
so a kernel computes exactly what it computed with the arrays passed one by one.

A ``prange`` loop can read a flat named tuple that is an argument of its function, but
not a nested one (numba's parallel lowering passes the fields of a tuple it captures as
separate arguments, one level deep), so a batch and its geometry travel side by side
and an :class:`Example` is built inside the parallel loop that uses it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gradstat.kernels.forward import offsets


class Geometry(NamedTuple):
    """The layout of a network's parameters and units (see the module docstring)."""

    sizes: np.ndarray
    woff: np.ndarray
    boff: np.ndarray
    uoff: np.ndarray


class Batch(NamedTuple):
    """A batch of ``B`` examples as the kernels read it (with its :class:`Geometry`).

    ``theta`` the flat parameters, ``L1`` layer 1's tables ``(B, 7, n_1)``
    (:func:`gradstat.kernels.forward.layer1_table`, for the unit mode ``mode``), ``X`` the
    inputs ``(B, n_in)``, ``T`` the targets ``(B, n_t)``, ``loss`` the loss code.
    """

    theta: np.ndarray
    L1: np.ndarray
    X: np.ndarray
    T: np.ndarray
    loss: int
    mode: int


class Example(NamedTuple):
    """What a draw reads about one example: ``theta``, ``geo``, layer 1's table ``tab1``
    ``(7, n_1)``, the target row ``t``, the loss code and the unit mode."""

    theta: np.ndarray
    geo: Geometry
    tab1: np.ndarray
    t: np.ndarray
    loss: int
    mode: int


@njit(cache=True)
def geometry(sizes: np.ndarray) -> Geometry:
    """The :class:`Geometry` of ``sizes`` (int64), offsets from :func:`offsets`."""
    woff, boff, uoff = offsets(sizes)
    return Geometry(sizes, woff, boff, uoff)


def make_batch(
    theta: np.ndarray, L1: np.ndarray, X: np.ndarray, T: np.ndarray, loss: int, mode: int
) -> Batch:
    """The :class:`Batch` of these arrays (``loss`` and ``mode`` as Python ints, so that
    every caller passes the same types and a kernel compiles once)."""
    return Batch(theta, L1, X, T, int(loss), int(mode))


@njit(cache=True, inline="always")
def example(batch: Batch, geo: Geometry, b: int) -> Example:
    """Example ``b`` of ``batch``."""
    return Example(batch.theta, geo, batch.L1[b], batch.T[b], batch.loss, batch.mode)
