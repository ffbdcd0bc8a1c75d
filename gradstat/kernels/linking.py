"""Calls that stay calls: a large jitted function compiled once, not once per caller.

numba links the compiled code of every jitted function a kernel calls into the kernel's
own LLVM module and optimises the whole again (the callee is inlined and compiled to
machine code anew), so a function called from several kernels is compiled once per
kernel. :func:`outlined` makes a call site that calls the function's own compiled code
instead: the callee is compiled (or loaded from numba's cache) once per signature, its
address is published under a symbol named after the function and the signature, and
callers declare that symbol without linking its code. A caller's cached code records
which symbols it needs, and they are published again before it is loaded from the cache
(numba's ``reload_init`` hook, run before a cached function is linked).

The exact engines' parallel kernels use it for the body of their ``prange`` loop: each
chunk (or example) runs in a serial worker called through its one compiled copy, so
numba's parallel passes, slow on a large loop body, see only the short loop over chunks
(:data:`PRANGE_ONLY`), and the worker, compiled without them, runs the same code.

A caller must lower the outlined call itself (directly, or through a function with
``inline="always"``): a jitted helper that makes the call for another kernel is not cached
on its own, so that the kernel that calls it always records the symbol.
"""

from __future__ import annotations

import hashlib
import importlib
from functools import partial
from typing import Any

from llvmlite import binding as llvm
from numba import types
from numba.core import cgutils
from numba.core.cpu_options import ParallelOptions
from numba.extending import intrinsic

SYMBOL_PREFIX = "gradstat_outlined_"
"""The prefix of the symbols :func:`outlined` publishes."""

PRANGE_ONLY = ParallelOptions(
    {
        "prange": True,
        "comprehension": False,
        "reduction": False,
        "inplace_binop": False,
        "setitem": False,
        "numpy": False,
        "stencil": False,
        "fusion": False,
    }
)
"""``parallel=`` for kernels whose only parallel code is a ``prange`` loop over independent
jobs: numba's ``parallel=True`` also turns every NumPy allocation and array expression
of the kernel into a parallel loop of its own, each compiled as a separate function
(most of a small kernel's compile time) to gain nothing on arrays of a few hundred
entries. Element by element, the same values."""

_published: dict[str, int] = {}
"""Symbol name -> address of each compiled callee published in this process."""

OUTLINED: list[str] = []
"""The ``module:name`` of every function an :func:`outlined` call site calls. Each is
meant to compile for one signature: its callers pass the same types (``np.int64(i)`` for
a ``prange`` index, which is signed where the kernel is typed and unsigned in its
parallel body; no literal constants)."""


def symbol_name(path: str, argtypes: tuple[Any, ...]) -> str:
    """The symbol under which the compiled ``path`` (``module:name``) for ``argtypes`` is
    published: a digest, so that the name is the same in every process."""
    digest = hashlib.sha1(f"{path}{argtypes}".encode()).hexdigest()[:20]
    return SYMBOL_PREFIX + digest


def publish(path: str, argtypes: tuple[Any, ...]) -> str:
    """Compile (or load from the cache) the jitted function ``path`` (``module:name``) for
    ``argtypes`` and publish its address; return the symbol's name."""
    name = symbol_name(path, argtypes)
    if name not in _published:
        module, attr = path.split(":")
        dispatcher = getattr(importlib.import_module(module), attr)
        dispatcher.compile(argtypes)
        cres = dispatcher.overloads[argtypes]
        address = cres.library.get_pointer_to_function(cres.fndesc.mangled_name)
        llvm.add_symbol(name, address)
        _published[name] = address
    return name


def outlined(path: str) -> Any:
    """An intrinsic calling the jitted function ``path`` (``module:name``, a function with
    ``cache=True``) through its own compiled code, with numba's calling convention (its
    exceptions propagate as from an ordinary call)."""
    OUTLINED.append(path)

    @intrinsic
    def call(typingctx, *args):  # noqa: ANN001, ANN202, ARG001
        argtypes = tuple(types.unliteral(t) for t in args)
        name = publish(path, argtypes)
        module, attr = path.split(":")
        restype = getattr(importlib.import_module(module), attr).overloads[argtypes]
        restype = restype.signature.return_type

        def codegen(context, builder, signature, packed):  # noqa: ANN001, ANN202
            # The arguments arrive as one tuple (a star-argument), cast to argtypes.
            values = cgutils.unpack_tuple(builder, packed[0], len(argtypes))
            values = [
                context.cast(builder, v, t, u)
                for v, t, u in zip(values, signature.args[0].types, argtypes, strict=True)
            ]
            fnty = context.call_conv.get_function_type(restype, argtypes)
            fn = cgutils.get_or_insert_function(builder.module, fnty, name)
            context.active_code_library._reload_init.add(partial(publish, path, argtypes))
            status, result = context.call_conv.call_function(builder, fn, restype, argtypes, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return result

        return restype(types.StarArgTuple(args)), codegen

    return call
