"""The network file format: ``.npz`` archives of a network's sizes, loss and parameters.

This module knows the file, not the class: :meth:`gradstat.BinaryNetwork.save` and
:meth:`~gradstat.BinaryNetwork.load` (and :mod:`gradstat.storage` above them) call it, so
it imports nothing of gradstat.

A network file is an uncompressed NumPy ``.npz`` archive holding exactly these arrays:

* ``format``: 0-d string ``"gradstat.network"``, marking the file as a gradstat network;
* ``version``: 0-d integer ``1``, the layout version of this list;
* ``sizes``: 1-d integers ``(n_in, n_1, ..., n_L, n_out)``;
* ``loss``: 0-d string, ``"mse"``, ``"bce"``, ``"xent"`` or ``"linear"``;
* ``params``: 1-d float64 of shape ``(n_params,)``, the flat parameters in docs/model.md order;
* ``values`` (optional; absent means ``"01"``): 0-d string, ``"01"`` or ``"pm1"``.

Loading never unpickles (``numpy.load(..., allow_pickle=False)``) and checks every key,
dtype and shape, so a truncated, malformed or inconsistent file is refused with a
``ValueError`` (or ``TypeError`` for a wrong dtype) that names the file and the problem.
The declared dtype and shape of every entry are read from its ``.npy`` header and checked
(against what ``sizes`` implies, and against the bytes the entry holds) before any array
is read, so a small file that claims a huge array is refused without allocating it.
Parameters round-trip bit for bit.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np

from gradstat._validation import MAX_PARAMS, check_path, check_sizes, parameter_count

N = TypeVar("N")

SCALAR_BYTES = 4096
"""The most bytes a single-value entry (``format``, ``version``, ``loss``, ``values``) may
declare."""

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
    path = Path(check_path(path))
    if path.is_dir():
        raise ValueError(
            f"path {str(path)!r} is a folder; give a file name to write the network to"
        )
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
    path = Path(check_path(path))
    where = f"network file {str(path)!r}"
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{where} is a folder, not a network file") from None
    # Load from an open handle, not a path: numpy leaves the file open when a path fails.
    with fh:
        archive = _open_archive(fh, where)
        with archive:
            return _read_network(archive, where, build)


def _read_network(archive: np.lib.npyio.NpzFile, where: str, build: Callable[..., N]) -> N:
    headers = {key: _header(archive, key, where) for key in archive.files}
    for key in ("format", "version", "loss", "values"):
        if key in headers:
            shape, dtype = headers[key]
            if shape != ():
                raise ValueError(f"{where}: {key!r} must be a single value, got shape {shape}")
            if dtype.itemsize > SCALAR_BYTES:
                raise ValueError(
                    f"{where}: {key!r} declares a value of {dtype.itemsize:,} bytes, more than "
                    f"the {SCALAR_BYTES:,} a single value may take"
                )
    fmt = _scalar(_read(archive, "format", where), "U", "a string", "format", where)
    if fmt != FORMAT:
        raise ValueError(f"{where}: 'format' is {fmt!r}, expected {FORMAT!r}")
    version = _scalar(_read(archive, "version", where), "iu", "an integer", "version", where)
    if version != VERSION:
        raise ValueError(
            f"{where}: layout version {version} is not supported (this gradstat reads {VERSION})"
        )
    loss = _scalar(_read(archive, "loss", where), "U", "a string", "loss", where)
    values = "01"
    if "values" in headers:
        values = _scalar(_read(archive, "values", where), "U", "a string", "values", where)
    shape, dtype = headers["sizes"]
    if dtype.kind not in "iu":
        raise TypeError(f"{where}: 'sizes' must hold integers, got dtype {dtype}")
    if len(shape) != 1:
        raise ValueError(f"{where}: 'sizes' must be 1-d, got shape {shape}")
    if shape[0] > MAX_PARAMS:
        raise ValueError(f"{where}: 'sizes' declares {shape[0]:,} layers, more than any network")
    try:
        sizes = check_sizes(tuple(int(s) for s in _read(archive, "sizes", where)))
    except (ValueError, TypeError) as err:
        raise type(err)(f"{where} is inconsistent: {err}") from None
    shape, dtype = headers["params"]
    if dtype != np.float64:
        raise TypeError(f"{where}: 'params' must be float64, got dtype {dtype}")
    n_params = parameter_count(sizes)
    if shape != (n_params,):
        raise ValueError(
            f"{where} is inconsistent: params must have shape ({n_params},) for sizes "
            f"{sizes}, got {shape}"
        )
    params = _read(archive, "params", where)
    try:
        return build(sizes, params, loss=loss, values=values)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{where} is inconsistent: {err}") from None


def _open_archive(fh: BinaryIO, where: str) -> np.lib.npyio.NpzFile:
    """The archive, after checking that its keys are exactly :data:`KEYS` (and optionally
    :data:`OPTIONAL_KEYS`); no entry is read yet."""
    try:
        archive = np.load(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where} is truncated or not an .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} holds a single .npy array, not a gradstat .npz archive")
    present = set(archive.files)
    missing = [k for k in KEYS if k not in present]
    unknown = sorted(present - set(KEYS) - set(OPTIONAL_KEYS))
    if missing or unknown:
        archive.close()
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
    return archive


def _header(
    archive: np.lib.npyio.NpzFile, key: str, where: str
) -> tuple[tuple[int, ...], np.dtype]:
    """The declared shape and dtype of entry ``key``, from its ``.npy`` header only.

    Refuses object arrays (they would need unpickling) and entries that declare more data
    than they hold, so nothing is allocated for a truncated or forged entry.
    """
    member = key + ".npy" if key + ".npy" in archive.zip.namelist() else key
    try:
        info = archive.zip.getinfo(member)
        with archive.zip.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ValueError(f".npy format version {version} is not supported")
            offset = fp.tell()
    except ValueError as err:
        raise ValueError(f"{where}: entry {key!r} is malformed ({err})") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{where}: entry {key!r} is truncated or corrupt ({err})") from None
    if dtype.hasobject:
        raise ValueError(
            f"{where}: entry {key!r} is a pickled object array; gradstat never "
            "unpickles (only plain numeric and string arrays are accepted)"
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - offset:
        raise ValueError(
            f"{where}: entry {key!r} declares shape {shape} of {dtype} ({declared:,} bytes) "
            f"but holds {max(info.file_size - offset, 0):,} bytes of data: the file is "
            "truncated or corrupt"
        )
    return tuple(shape), dtype


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
