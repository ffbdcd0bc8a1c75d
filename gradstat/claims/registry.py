"""The registry: claims, their results and counterexamples, the table.

A claim is registered with the :func:`claim` decorator placed above its check, a function
of ``max_examples`` that returns the :class:`Part` s of its evidence (or its one part); the
decorator builds
the :class:`ClaimResult` (key and verdict) from them. :func:`register_claim` adds a
:class:`Claim` whose ``check`` returns a :class:`ClaimResult` itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._registry import add_unique
from gradstat._validation import check_int
from gradstat.network import BinaryNetwork

VERDICTS: tuple[str, ...] = ("proved", "refuted", "holds only under conditions")
"""The verdicts a check may return (see :mod:`gradstat.claims`)."""

TOL = 1e-10
"""Tolerance of exact comparisons, relative to ``1 +`` the largest magnitude compared."""

SIGN_TOL = 1e-9
"""Sign statements skip coordinates whose exact gradient is at most this in magnitude."""

DEFAULT_MAX_EXAMPLES = 200
"""Hypothesis examples per search in :func:`check_claims`."""


@dataclass(frozen=True, eq=False)
class Counterexample:
    """A network, one input and one target on which a statement fails.

    Attributes
    ----------
    description : str
        What fails, with the exact numbers.
    sizes : tuple of int
    params : tuple of float
        The flat parameter vector in the parameter order of docs/model.md.
    x : tuple of float
        One input of length ``n_in``.
    t : tuple of float or int
        The target (an int class for ``xent``).
    loss : str
    estimator : str
        The estimator the statement is about (``""`` when none).
    values : {"01", "pm1"}
        Unit values of the network (units in ``{0, 1}`` or ``{-1, +1}``).
    """

    description: str
    sizes: tuple[int, ...]
    params: tuple[float, ...]
    x: tuple[float, ...]
    t: tuple[float, ...] | int
    loss: str
    estimator: str = ""
    values: str = "01"

    @classmethod
    def from_problem(
        cls, description: str, net: BinaryNetwork, x: Any, t: Any, estimator: str = ""
    ) -> Counterexample:
        """Record ``net, x, t`` (one example) as plain Python numbers."""
        target = np.asarray(t)
        t_plain = int(target.reshape(-1)[0]) if net.loss == "xent" else _floats(target)
        return cls(
            description,
            net.sizes,
            _floats(net.params),
            _floats(x),
            t_plain,
            net.loss,
            estimator,
            net.values,
        )

    @classmethod
    def no_input(
        cls, description: str, sizes: tuple[int, ...], params: tuple[float, ...], t: float,
        loss: str, estimator: str,
    ) -> Counterexample:  # fmt: skip
        """A network without inputs (``sizes[0] = 0``, ``x = ()``) and one target ``t`` (a
        number, or the class for ``xent``); ``params`` in the parameter order of
        docs/model.md."""
        target = int(t) if loss == "xent" else (float(t),)
        return cls(description, sizes, _floats(params), (), target, loss, estimator)

    @classmethod
    def one_unit(
        cls, description: str, a: float, t: float, loss: str, estimator: str, w_o: float = 1.0
    ) -> Counterexample:
        """One stochastic unit of logit ``a`` and no input, ``y = w_o h``: sizes ``(0, 1,
        1)`` and params ``(a, w_o, 0)`` (``b_1, W_o, b_o``)."""
        return cls.no_input(description, (0, 1, 1), (a, w_o, 0.0), t, loss, estimator)

    def network(self) -> BinaryNetwork:
        """The network, rebuilt."""
        return BinaryNetwork(self.sizes, self.params, loss=self.loss, values=self.values)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, ready for JSON."""
        t = self.t if isinstance(self.t, int) else list(self.t)
        return {
            "description": self.description,
            "sizes": list(self.sizes),
            "params": list(self.params),
            "x": list(self.x),
            "t": t,
            "loss": self.loss,
            "estimator": self.estimator,
            "values": self.values,
        }


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


@dataclass(frozen=True)
class Part:
    """One part of a check: a sentence of evidence and any confirmed counterexamples.

    Attributes
    ----------
    text : str
    n_examples : int
        Hypothesis examples meeting the conditions behind the sentence.
    counterexamples : tuple of Counterexample
    outside : bool
        Whether the part is about examples outside the claim's conditions: its
        counterexamples make the claim hold only under conditions instead of refuting it.
    """

    text: str
    n_examples: int
    counterexamples: tuple[Counterexample, ...] = ()
    outside: bool = False


@dataclass(frozen=True, eq=False)
class ClaimResult:
    """The verdict of one claim's check.

    Attributes
    ----------
    key : str
        The claim's key.
    verdict : str
        One of :data:`VERDICTS`.
    evidence : str
        What was checked and what was seen, with numbers and tolerances.
    n_examples : int
        Hypothesis examples meeting the conditions that were checked, over all parts.
    counterexamples : tuple of Counterexample
        Confirmed counterexamples: the minimal failing example for ``"refuted"``, the
        examples outside the conditions for ``"holds only under conditions"``.
    """

    key: str
    verdict: str
    evidence: str
    n_examples: int
    counterexamples: tuple[Counterexample, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @classmethod
    def from_parts(cls, key: str, parts: Sequence[Part]) -> ClaimResult:
        """The verdict of ``parts``: ``"refuted"`` if a part under the conditions has a
        counterexample, else ``"holds only under conditions"`` if one outside them has,
        else ``"proved"``. The evidence lists the parts under the conditions first."""
        inside = [p for p in parts if not p.outside]
        outside = [p for p in parts if p.outside]
        failed = [c for p in inside for c in p.counterexamples]
        beyond = [c for p in outside for c in p.counterexamples]
        unique: dict[tuple[Any, ...], Counterexample] = {}
        for c in failed + beyond:
            unique.setdefault((c.sizes, c.params, c.x, c.t, c.loss, c.estimator, c.values), c)
        if failed:
            verdict = "refuted"
        elif beyond:
            verdict = "holds only under conditions"
        else:
            verdict = "proved"
        ordered = [*inside, *outside]
        return cls(
            key=key,
            verdict=verdict,
            evidence=" ".join(p.text for p in ordered),
            n_examples=sum(p.n_examples for p in ordered),
            counterexamples=tuple(unique.values()),
        )

    @property
    def counterexample(self) -> Counterexample | None:
        """The first confirmed counterexample, or None."""
        return self.counterexamples[0] if self.counterexamples else None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, ready for JSON."""
        return {
            "key": self.key,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "n_examples": self.n_examples,
            "counterexamples": [c.to_dict() for c in self.counterexamples],
        }


@dataclass(frozen=True)
class Claim:
    """A statement from the literature with a deterministic check.

    Attributes
    ----------
    key : str
        Short identifier (``python -m gradstat claims --claim KEY``).
    statement : str
        The statement, in the notation of docs/model.md.
    source : str
        The paper it comes from (or ``"derived here"`` with the paper defining the terms).
    conditions : str
        Exactly which networks, losses, estimators and tolerances the check covers.
    check : callable
        ``check(max_examples=...) -> ClaimResult``.
    """

    key: str
    statement: str
    source: str
    conditions: str
    check: Callable[..., ClaimResult] = field(repr=False, compare=False)


CLAIMS: dict[str, Claim] = {}
"""Registered claims by key, in registration order."""


def register_claim(claim: Claim) -> Claim:
    """Add a claim to :data:`CLAIMS` (its key must be new) and return it."""
    key = getattr(claim, "key", None)
    return add_unique(CLAIMS, key, claim, Claim, "register_claim",
                      f"a claim with key {key!r}")  # fmt: skip


def claim(
    *, statement: str, source: str, conditions: str, key: str | None = None
) -> Callable[[Callable[[int], Part | Sequence[Part]]], Claim]:
    """Register the decorated function as the check of a claim, and return the claim.

    The function takes ``max_examples`` (Hypothesis examples per search) and returns the
    :class:`Part` s of its evidence, or its one part; the claim's ``check(max_examples=...)``
    turns them into a :class:`ClaimResult` (:meth:`ClaimResult.from_parts`). The key is the
    function's name unless ``key`` is given. In the function's docstring goes the
    closed-form argument; the paper goes in ``source`` only.
    """

    def register(parts: Callable[[int], Part | Sequence[Part]]) -> Claim:
        name = parts.__name__ if key is None else key

        def check(*, max_examples: int) -> ClaimResult:
            found = parts(max_examples)
            return ClaimResult.from_parts(name, [found] if isinstance(found, Part) else found)

        check.__name__ = check.__qualname__ = parts.__name__
        check.__module__, check.__doc__ = parts.__module__, parts.__doc__
        return register_claim(Claim(name, statement, source, conditions, check))

    return register


def claim_keys(keys: str | Iterable[str] | None = None) -> list[str]:
    """The claims :func:`check_claims` runs for ``keys`` (``None``: every registered one),
    or a ``ValueError`` naming the unknown keys and the registered ones."""
    chosen = list(CLAIMS) if keys is None else [keys] if isinstance(keys, str) else list(keys)
    unknown = [k for k in chosen if k not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; registered claims: {', '.join(CLAIMS)}")
    return chosen


def check_claims(
    keys: str | Iterable[str] | None = None, *, max_examples: int = DEFAULT_MAX_EXAMPLES
) -> list[ClaimResult]:
    """Run the checks of the given claims (default: all registered), in that order.

    Parameters
    ----------
    keys : str, iterable of str or None
        Claim keys; ``None`` runs every registered claim.
    max_examples : int
        Hypothesis examples per search (each claim runs one to four searches).

    Raises
    ------
    TypeError
        ``max_examples`` is not an int, or a check does not return its claim's result.
    ValueError
        Unknown key, or ``max_examples < 1``.
    """
    max_examples = check_int(max_examples, "max_examples", minimum=1)
    chosen = claim_keys(keys)
    results = []
    for key in chosen:
        result = CLAIMS[key].check(max_examples=max_examples)
        if not isinstance(result, ClaimResult) or result.key != key:
            raise TypeError(
                f"the check of claim {key!r} must return a ClaimResult with key {key!r}"
            )
        results.append(result)
    return results


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def claims_table(results: Sequence[ClaimResult], claims: dict[str, Claim] | None = None) -> str:
    """A Markdown table: claim, source, conditions, verdict, evidence (one row per result).

    ``claims`` maps keys to claims (default: the registry :data:`CLAIMS`).
    """
    registry = CLAIMS if claims is None else claims
    lines = [
        "| claim | source | conditions | verdict | evidence |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r.key not in registry:
            raise ValueError(f"result for unknown claim {r.key!r}")
        c = registry[r.key]
        cells = [f"**{r.key}**: {c.statement}", c.source, c.conditions, f"**{r.verdict}**"]
        cells.append(f"{r.evidence} ({r.n_examples} examples)")
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    return "\n".join(lines)


def claims_text_table(
    results: Sequence[ClaimResult], *, width: int = 100, claims: dict[str, Claim] | None = None
) -> str:
    """A compact plain-text table for a terminal ``width`` characters wide.

    One line per result: the claim's key, its verdict, the examples checked, its
    counterexamples (``cex``) and its statement, cut to what is left of the width (ending
    ``...`` when cut); when less than 30 characters would be left, the statement goes on
    its own indented line, cut to the width. Then a line counting the verdicts.
    :func:`claims_table` has sources, conditions and evidence.

    Parameters
    ----------
    results : sequence of ClaimResult
    width : int
        Characters per line (at least 40 are used).
    claims : dict, optional
        Maps keys to claims (default: the registry :data:`CLAIMS`).
    """
    registry = CLAIMS if claims is None else claims
    for r in results:
        if r.key not in registry:
            raise ValueError(f"result for unknown claim {r.key!r}")
    width = max(40, width)
    head = ("claim", "verdict", "examples", "cex")
    rows = [(r.key, r.verdict, str(r.n_examples), str(len(r.counterexamples))) for r in results]
    widths = [max(len(row[k]) for row in [head, *rows]) for k in range(len(head))]
    room = width - sum(widths) - 2 * len(widths)
    below = room < 30  # the statement on a line of its own
    lines = []
    for row, r in zip([head, *rows], [None, *results]):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                 row[2].rjust(widths[2]), row[3].rjust(widths[3])]  # fmt: skip
        statement = "statement" if r is None else " ".join(registry[r.key].statement.split())
        if below:
            lines += ["  ".join(cells).rstrip(), "    " + _cut(statement, width - 4)]
        else:
            lines.append("  ".join(cells) + "  " + _cut(statement, room))
    verdicts = ", ".join(
        f"{sum(r.verdict == v for r in results)} {v}"
        for v in VERDICTS
        if any(r.verdict == v for r in results)
    )
    total = f"{len(results)} claim{'s' if len(results) != 1 else ''}: {verdicts}."
    lines.append(textwrap.fill(f"{total} {_TEXT_TAIL}", width))
    return "\n".join(lines)


_TEXT_TAIL = "cex: counterexamples. Sources, conditions, evidence and counterexamples: --format md"


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(0, room - 3)].rstrip() + "..."


def counterexample_list(results: Sequence[ClaimResult]) -> str:
    """Markdown list of every counterexample, with what is needed to rebuild it."""
    lines = []
    for r in results:
        for c in r.counterexamples:
            d = c.to_dict()
            values = f", values={c.values!r}" if c.values != "01" else ""
            lines.append(
                f"- `{r.key}`: {c.description} — sizes={d['sizes']}, params={d['params']}, "
                f"x={d['x']}, t={d['t']}, loss={c.loss!r}{values}"
            )
    return "\n".join(lines)
