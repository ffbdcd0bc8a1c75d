"""The network file format: ``.npz`` archives of a network's sizes, loss and parameters.

This module knows the file, not the class: :meth:`gradstat.BinaryNetwork.save` and
:meth:`~gradstat.BinaryNetwork.load` (and :mod:`gradstat.storage` above them) call it, so
it imports nothing of gradstat.

A network file is an uncompressed NumPy ``.npz`` archive holding exactly these arrays:

* ``format``: 0-d string ``"gradstat.network"``, marking the file as a gradstat network;
* ``version``: 0-d integer ``1``, the layout version of this list;
* ``sizes``: 1-d integers ``(n_in, n_1, ..., n_L, n_out)``;
* ``loss``: 0-d string, ``"mse"``, ``"bce"``, ``"xent"`` or ``"linear"``;
* ``params``: 1-d float64 of shape ``(n_params,)``, the flat parameters in SPEC order;
* ``values`` (optional; absent means ``"01"``): 0-d string, ``"01"`` or ``"pm1"``.

Loading never unpickles (``numpy.load(..., allow_pickle=False)``) and checks every key,
dtype and shape, so a truncated, malformed or inconsistent file is refused with a
``ValueError`` (or ``TypeError`` for a wrong dtype) that names the file and the problem.
Parameters round-trip bit for bit.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np

N = TypeVar("N")

FORMAT = "gradstat.network"
"""The value of the ``format`` entry of every network file."""

VERSION = 1
"""The layout version written by :func:`write_network`."""

KEYS = ("format", "version", "sizes", "loss", "params")
"""The arrays every network file holds."""

OPTIONAL_KEYS = ("values",)
"""Arrays a network file may hold besides :data:`KEYS` (older files lack them)."""


def write_network(
    path: str | os.PathLike[str],
    *,
    sizes: tuple[int, ...],
    loss: str,
    params: np.ndarray,
    values: str,
) -> Path:
    """Write a network's sizes, loss, parameters and unit values to ``path`` (``.npz``).

    Parameters
    ----------
    path : str or path-like
        The file to write, used as given (no ``.npz`` suffix is appended).
    sizes, loss, params, values
        The network's (already checked by :class:`gradstat.BinaryNetwork`).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with path.open("wb") as fh:
        np.savez(
            fh,
            format=np.array(FORMAT),
            version=np.array(VERSION, dtype=np.int64),
            sizes=np.array(sizes, dtype=np.int64),
            loss=np.array(loss),
            params=np.asarray(params, dtype=np.float64),
            values=np.array(values),
        )
    return path


def read_network(path: str | os.PathLike[str], build: Callable[..., N]) -> N:
    """Read a network file and make the network: ``build(sizes, params, loss=, values=)``.

    Parameters
    ----------
    path : str or path-like
    build : callable
        The network's class (:class:`gradstat.BinaryNetwork`); its ``ValueError`` or
        ``TypeError`` is raised again with the file's name.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not an ``.npz`` archive (or is truncated), lacks a key or has an
        unknown one, holds pickled object arrays, or its sizes, loss and parameters are
        inconsistent (for example ``params`` of the wrong length for ``sizes``).
    TypeError
        If an entry has the wrong dtype (for example float ``sizes``).
    """
    path = Path(path)
    where = f"network file {str(path)!r}"
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{where} does not exist") from None
    # Load from an open handle, not a path: numpy leaves the file open when a path fails.
    with fh:
        arrays = _read_arrays(fh, where)
    fmt = _scalar(arrays["format"], "U", "a string", "format", where)
    if fmt != FORMAT:
        raise ValueError(f"{where}: 'format' is {fmt!r}, expected {FORMAT!r}")
    version = _scalar(arrays["version"], "iu", "an integer", "version", where)
    if version != VERSION:
        raise ValueError(
            f"{where}: layout version {version} is not supported (this gradstat reads {VERSION})"
        )
    loss = _scalar(arrays["loss"], "U", "a string", "loss", where)
    values = "01"
    if "values" in arrays:
        values = _scalar(arrays["values"], "U", "a string", "values", where)
    sizes = arrays["sizes"]
    if sizes.dtype.kind not in "iu":
        raise TypeError(f"{where}: 'sizes' must hold integers, got dtype {sizes.dtype}")
    if sizes.ndim != 1:
        raise ValueError(f"{where}: 'sizes' must be 1-d, got shape {sizes.shape}")
    params = arrays["params"]
    if params.dtype != np.float64:
        raise TypeError(f"{where}: 'params' must be float64, got dtype {params.dtype}")
    try:
        return build(tuple(int(s) for s in sizes), params, loss=loss, values=values)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{where} is inconsistent: {err}") from None


def _read_arrays(fh: BinaryIO, where: str) -> dict[str, np.ndarray]:
    """Every entry of the archive, after checking that the keys are exactly :data:`KEYS`."""
    try:
        archive = np.load(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where} is truncated or not an .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} holds a single .npy array, not a gradstat .npz archive")
    with archive:
        present = set(archive.files)
        missing = [k for k in KEYS if k not in present]
        unknown = sorted(present - set(KEYS) - set(OPTIONAL_KEYS))
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing key(s) {missing}")
            if unknown:
                problems.append(f"unknown key(s) {unknown}")
            raise ValueError(
                f"{where} is not a gradstat network: {' and '.join(problems)}; "
                f"a network file holds exactly {list(KEYS)} (and optionally "
                f"{list(OPTIONAL_KEYS)})"
            )
        return {key: _read(archive, key, where) for key in KEYS + OPTIONAL_KEYS if key in present}


def _read(archive: np.lib.npyio.NpzFile, key: str, where: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(
                f"{where}: entry {key!r} is a pickled object array; gradstat never "
                "unpickles (only plain numeric and string arrays are accepted)"
            ) from None
        raise ValueError(f"{where}: entry {key!r} is malformed ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{where}: entry {key!r} is truncated or corrupt ({err})") from None


def _scalar(value: np.ndarray, kinds: str, expect: str, key: str, where: str) -> str | int:
    if value.dtype.kind not in kinds:
        raise TypeError(f"{where}: {key!r} must be {expect}, got dtype {value.dtype}")
    if value.shape != ():
        raise ValueError(f"{where}: {key!r} must be a single value, got shape {value.shape}")
    return value.item()
