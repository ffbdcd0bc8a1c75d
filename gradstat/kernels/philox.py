"""Counter-based random numbers for the sampling kernels: Philox4x64-10.

Philox (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3",
SC'11, doi:10.1145/2063384.2063405) maps a 256-bit *counter* and a 128-bit *key* through
ten rounds of multiplications and xors to 256 random bits. The paper shows that it passes
TestU01's BigCrush with many patterns of counters and keys, so distinct counters under one
key serve as independent streams: a number is a pure function of ``(key, counter)``, no
state is carried between draws, and parallel chunks need no coordination. This is the algorithm of
``numpy.random.Philox``, bit for bit: with ``Philox(key=k, counter=c)`` the first four
``random_raw()`` words are :func:`philox4x64` of counter ``c + 1`` (numpy increments
the counter before each block).

:func:`fill_noise` turns the blocks of one (draw, example) pair into uniforms or normals;
:func:`stream_key` derives the key from a seed.
"""

from __future__ import annotations

from math import cos, log, pi, sin, sqrt

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

PHILOX_M0 = np.uint64(0xD2E7470EE14C6C93)
PHILOX_M1 = np.uint64(0xCA5A826395121157)
"""Round multipliers of Philox4x64 (Salmon et al. 2011, table 2)."""
PHILOX_W0 = np.uint64(0x9E3779B97F4A7C15)
PHILOX_W1 = np.uint64(0xBB67AE8584CAA73B)
"""Key increments (Weyl sequence) between rounds: the golden ratio and sqrt(3) - 1."""
ROUNDS = 10

SHIFT = np.uint64(12)
UNIT = 2.0**-52
"""A 64-bit word ``w`` gives the uniform ``((w >> 12) + 0.5) 2^-52``: the midpoints of a
grid of ``2^52`` cells, so strictly inside ``(0, 1)`` (between ``2^-53`` and
``1 - 2^-53``) and symmetric under ``u -> 1 - u``."""


@intrinsic
def _mulhilo(typingctx, a, b):  # noqa: ANN001, ANN202
    """The high and low 64-bit halves of the 128-bit product ``a * b`` (one machine multiply)."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        wide = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        lo = builder.trunc(prod, ir.IntType(64))
        hi = builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@njit(cache=True)
def philox4x64(
    c0: np.uint64, c1: np.uint64, c2: np.uint64, c3: np.uint64, k0: np.uint64, k1: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """Philox4x64-10: the four 64-bit output words for counter ``(c0..c3)`` and key ``(k0, k1)``.

    Each round: ``(hi0, lo0) = M0 c0``, ``(hi1, lo1) = M1 c2`` (128-bit products), then
    ``c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)``; the key grows by ``(W0, W1)`` before
    every round but the first.
    """
    for r in range(ROUNDS):
        if r > 0:
            k0 += PHILOX_W0
            k1 += PHILOX_W1
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


@njit(cache=True)
def uniform(w: np.uint64) -> float:
    """The uniform of one 64-bit word (see ``UNIT``): strictly inside ``(0, 1)``."""
    return (float(w >> SHIFT) + 0.5) * UNIT


@njit(cache=True)
def fill_noise(key: np.ndarray, draw: int, example: int, normal: bool, out: np.ndarray) -> None:
    """The noise of one example in one draw: ``out[k]`` for ``k < len(out)``.

    Number ``k`` comes from word ``k mod 4`` of the block with counter
    ``(draw, example, k div 4, 0)`` under ``key``. Uniforms are :func:`uniform` of the words.
    Normals take the block's words in pairs ``(w0, w1)``, ``(w2, w3)`` through the
    Box-Muller transform (Box & Muller 1958): with ``u1, u2`` their uniforms,
    ``sqrt(-2 log u1) cos(2 pi u2)`` and ``sqrt(-2 log u1) sin(2 pi u2)`` are numbers
    ``4j, 4j+1`` (resp. ``4j+2, 4j+3``); ``u1 >= 2^-53`` bounds them by 8.6 in absolute value.
    """
    n = out.shape[0]
    k0, k1 = key[0], key[1]
    c0, c1, zero = np.uint64(draw), np.uint64(example), np.uint64(0)
    for j in range((n + 3) // 4):
        w0, w1, w2, w3 = philox4x64(c0, c1, np.uint64(j), zero, k0, k1)
        if normal:
            r = sqrt(-2.0 * log(uniform(w0)))
            angle = 2.0 * pi * uniform(w1)
            v0, v1 = r * cos(angle), r * sin(angle)
            r = sqrt(-2.0 * log(uniform(w2)))
            angle = 2.0 * pi * uniform(w3)
            v2, v3 = r * cos(angle), r * sin(angle)
        else:
            v0, v1, v2, v3 = uniform(w0), uniform(w1), uniform(w2), uniform(w3)
        k = 4 * j
        out[k] = v0
        if k + 1 < n:
            out[k + 1] = v1
        if k + 2 < n:
            out[k + 2] = v2
        if k + 3 < n:
            out[k + 3] = v3


def stream_key(seed: np.random.SeedSequence) -> np.ndarray:
    """The Philox key of a seed: ``seed.generate_state(2, numpy.uint64)`` (does not spawn)."""
    return seed.generate_state(2, dtype=np.uint64)
