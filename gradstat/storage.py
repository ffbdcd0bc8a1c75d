"""Saving and loading networks as ``.npz`` files, so that a report can be rerun on them.

:func:`save_network` and :func:`load_network` are :meth:`gradstat.BinaryNetwork.save` and
:meth:`~gradstat.BinaryNetwork.load` as functions; the file format (which arrays, which
checks) is :mod:`gradstat.network_io`'s. Loading never unpickles, and a truncated,
malformed or inconsistent file is refused with a ``ValueError`` (or ``TypeError`` for a
wrong dtype) that names the file and the problem. Parameters round-trip bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradstat.network import BinaryNetwork
from gradstat.network_io import FORMAT, KEYS, OPTIONAL_KEYS, VERSION

__all__ = ["FORMAT", "KEYS", "OPTIONAL_KEYS", "VERSION", "load_network", "save_network"]


def save_network(net: BinaryNetwork, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` (sizes, loss and parameters) to ``path`` as an ``.npz`` archive.

    Parameters
    ----------
    net : BinaryNetwork
    path : str or path-like
        The file to write, used as given (no ``.npz`` suffix is appended).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        If ``net`` is not a :class:`BinaryNetwork`.
    """
    if not isinstance(net, BinaryNetwork):
        raise TypeError(f"save_network needs a BinaryNetwork, got {type(net).__name__}")
    return net.save(path)


def load_network(path: str | os.PathLike[str]) -> BinaryNetwork:
    """Read a network written by :func:`save_network` (:meth:`BinaryNetwork.load`).

    Returns the network with exactly the stored sizes, loss and parameters. Raises
    ``FileNotFoundError`` if there is no such file, and ``ValueError`` or ``TypeError``
    naming the file and the problem for one that is truncated, malformed or inconsistent
    (:func:`gradstat.network_io.read_network` lists the checks).
    """
    return BinaryNetwork.load(path)
