"""The Hypothesis search machinery shared by the checks, and their small helpers.

A check makes a :class:`Search` from its ``max_examples`` and builds each part of its
evidence with one call:

* :meth:`Search.holds`: a property that must hold on every generated example;
* :meth:`Search.outside`: a search outside the conditions, reporting the minimal example;
* :func:`confirmed`: the kept counterexamples, confirmed on every run.

A *measure* maps a generated example to ``None`` (it does not meet the conditions), to a
number (a violation when it exceeds :data:`TOL`), or to ``(violated, value)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import Verbosity, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from scipy.special import expit

from gradstat.claims.registry import TOL, Counterexample, Part
from gradstat.exact import estimator_moments
from gradstat.network import BinaryNetwork
from gradstat.strategies import problems

Measure = Callable[[Any], float | tuple[bool, float] | None]
"""An example's value (a violation above :data:`TOL`), ``(violated, value)``, or ``None``."""


def hypothesis_settings(max_examples: int) -> settings:
    """Derandomized, quiet, no database and no deadline: the checks are deterministic."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
    )


@dataclass(frozen=True)
class Found:
    """Outcome of a Hypothesis search for an example violating a property."""

    n_examples: int
    worst: float
    found: Any = None


class Search:
    """Hypothesis searches of ``max_examples`` examples each."""

    def __init__(self, max_examples: int) -> None:
        self.max_examples = max_examples

    def run(
        self, strategy: st.SearchStrategy[Any], measure: Measure, *, smallest: bool = False
    ) -> Found:
        """Look for an example where ``measure`` reports a violation; shrink the first one.

        ``worst`` is the largest value (the smallest with ``smallest=True``) over the
        examples meeting the conditions that were checked before the first violation.
        """
        sign = -1.0 if smallest else 1.0
        seen = {"n": 0, "worst": -np.inf, "hit": False}

        def violated(example: Any) -> bool:
            out = measure(example)
            if out is None:
                return False
            bad, value = out if isinstance(out, tuple) else (out > TOL, out)
            if not seen["hit"]:
                seen["n"] += 1
                seen["worst"] = max(seen["worst"], sign * value)
                seen["hit"] = bad
            return bad

        try:
            found = find(strategy, violated, settings=hypothesis_settings(self.max_examples))
        except NoSuchExample:
            found = None
        return Found(int(seen["n"]), sign * float(seen["worst"]), found)

    def holds(
        self,
        what: str,
        strategy: st.SearchStrategy[Any],
        measure: Measure,
        worst_label: str,
        describe: Callable[[Any], Counterexample],
        note: str | Callable[[], str] = "",
        *,
        smallest: bool = False,
    ) -> Part:
        """Evidence for ``what``, a property that must hold on every example.

        ``describe`` turns the minimal violating example into a counterexample; ``note``
        (or what it returns once the search is done) adds numbers to the sentence.
        """
        search = self.run(strategy, measure, smallest=smallest)
        if search.found is not None:
            cx = describe(search.found)
            return Part(f"{what}: VIOLATED; {cx.description}.", search.n_examples, (cx,))
        note = note() if callable(note) else note
        return Part(
            f"{what}: no violation in {search.n_examples} examples "
            f"({worst_label} {search.worst:.2g}{'; ' + note if note else ''}).",
            search.n_examples,
        )

    def outside(
        self,
        label: str,
        strategy: st.SearchStrategy[Any],
        measure: Callable[[BinaryNetwork, Any, Any], float | tuple[bool, float]],
        estimator: str,
        numbers: Callable[[BinaryNetwork, Any, Any], str],
        *,
        minimal: str | None = None,
        loss: bool = True,
    ) -> Part:
        """A search outside the conditions, on the first example of generated problems.

        ``measure(net, x, t)`` and ``numbers(net, x, t)`` (what fails, in numbers) take one
        example. The minimal example found is reported as a counterexample ``"minimal
        (MINIMAL) from hypothesis.find, NUMBERS"`` (``minimal`` defaults to ``label``);
        ``loss=False`` leaves the loss and unit values out of the sentence.
        """
        search = self.run(strategy, lambda problem: measure(*single(problem)))
        if search.found is None:
            return Part(
                f"{label}: no counterexample in {search.n_examples} examples.",
                search.n_examples,
                outside=True,
            )
        net, x, t = single(search.found)
        said = numbers(net, x, t)
        cx = Counterexample.from_problem(
            f"minimal ({label if minimal is None else minimal}) from hypothesis.find, {said}",
            net, x, t, estimator,
        )  # fmt: skip
        d = cx.to_dict()
        shrank = (
            f"{label}: hypothesis.find shrank to sizes {d['sizes']}, params {d['params']}, "
            f"x {d['x']}, t {d['t']}"
        )
        if loss:
            values = f", values {cx.values}" if cx.values != "01" else ""
            text = f"{shrank}, loss {cx.loss}{values}: {said}."
        else:
            text = f"{shrank}, {said}."
        return Part(text, search.n_examples, (cx,), outside=True)


def confirmed(
    kept: Sequence[Counterexample], confirm: Callable[[Counterexample], str | None]
) -> Part:
    """The kept counterexamples that ``confirm`` confirms (it returns their numbers, or
    ``None``), as a part outside the conditions."""
    texts = [(cx, confirm(cx)) for cx in kept]
    texts = [(cx, text) for cx, text in texts if text is not None]
    noun = "counterexample" if len(kept) == 1 else "counterexamples"
    return Part(
        f"Kept {noun} confirmed exactly ({len(texts)} of {len(kept)}): "
        + "; ".join(text for _, text in texts) + ".",
        0,
        tuple(cx for cx, _ in texts),
        outside=True,
    )  # fmt: skip


# --------------------------------------------------------------------------- helpers


def relative(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want| / (1 + max(|got|, |want|))``."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.size == 0:
        return 0.0
    scale = 1.0 + max(float(np.max(np.abs(got))), float(np.max(np.abs(want))))
    return float(np.max(np.abs(got - want))) / scale


def variance_ratio(var: np.ndarray, mean: np.ndarray) -> float:
    """``max_j Var_j / (1 + max_j |mean_j|)^2``: zero variance holds when this is ``<= TOL``.

    The engine's variance is ``E[d^2] - (E d)^2`` with ``d = g_hat - g``, so a biased but
    deterministic estimate keeps about ``eps * bias^2`` of rounding.
    """
    if var.size == 0:
        return 0.0
    return float(np.max(var)) / (1.0 + float(np.max(np.abs(mean)))) ** 2


def bias_ratio(problem: tuple[BinaryNetwork, Any, Any], estimator: str, **options: Any) -> float:
    """:func:`relative` deviation of ``E[g_hat]`` from ``g``, per example of ``(net, X, T)``."""
    net, X, T = problem
    m = estimator_moments(net, X, T, estimator, **options)
    return relative(m.example_mean, m.example_gradient)


def spread(label: str, values: Sequence[float], spec: str = ".3g") -> str:
    """``"LABEL median, range min to max"`` of ``values``, or ``""`` when there are none."""
    v = np.array(values)
    if not v.size:
        return ""
    return (
        f"{label} {format(np.median(v), spec)}, range {format(v.min(), spec)} to "
        f"{format(v.max(), spec)}"
    )


def dsigmoid(a: np.ndarray) -> np.ndarray:
    """``sigmoid'(a) = sigmoid(a) sigmoid(-a)``."""
    return expit(a) * expit(-a)


def single(problem: tuple[BinaryNetwork, np.ndarray, np.ndarray]) -> tuple[Any, Any, Any]:
    """``(net, x, t)`` of the first example of a generated problem."""
    net, X, T = problem
    return net, X[0], T[0]


def first_example(
    description: str, problem: tuple[BinaryNetwork, np.ndarray, np.ndarray], estimator: str
) -> Counterexample:
    """The first example of a generated ``(net, X, T)`` as a counterexample."""
    return Counterexample.from_problem(description, *single(problem), estimator)


def describe_as(description: str, estimator: str | None = None) -> Callable[[Any], Counterexample]:
    """A ``describe`` for :meth:`Search.holds`: the first example of the failing case as a
    counterexample for ``estimator``. The case is a generated ``(net, X, T)`` or a tuple led
    by one (``(problem, seed)``); without ``estimator`` it is ``(problem, estimator)``."""

    def describe(case: Any) -> Counterexample:
        if estimator is None:
            return first_example(description, *case)
        problem = case if isinstance(case[0], BinaryNetwork) else case[0]
        return first_example(description, problem, estimator)

    return describe


def one_layer(losses: tuple[str, ...], **kw: Any) -> st.SearchStrategy[Any]:
    """Problems of one example on one stochastic layer with one of ``losses``."""
    return problems(max_batch=1, min_depth=1, max_depth=1, losses=losses, **kw)
