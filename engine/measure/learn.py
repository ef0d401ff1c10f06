"""Fit a playbook's points to outcomes: L1-regularised logistic regression, rounded to integers.

Why this shape: a playbook's score is a sum of points per rule, which is exactly a
linear model over rule indicators, so a logistic regression's coefficients *are*
points. The L1 penalty sets most of them to zero, which keeps the table short enough
to review; rounding to integers (the largest ~``top_points``) keeps it readable, and
the ranking the rounded table gives is what is measured, not the model's. The
regularisation is chosen by cross-validation on precision at capacity (what a team
working the top of the list gets), and every figure reported is out-of-fold: the
whole pipeline — choose the regularisation, fit, round, cap the rules — is refit
inside each fold and judged on leads it never saw. The solver is scikit-learn's
(liblinear), with fixed seeds, so two runs give the same bytes.

Ties at the capacity cut (integer points tie often) are shared pro rata: the selected
leads of a tied score count with that score's conversion rate, as a random pick among
them would on average, so no order of the input can flatter a figure.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import EngineError

#: Inverse regularisation strengths tried, weakest penalty last (features are standardised).
GRID: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
#: Wilson intervals at 95%.
Z95 = 1.959963984540054
INSTALL_HINT = "pip install 'revenue-playbook-engine[learn]'"


@dataclass(frozen=True)
class Capacity:
    """How many leads a team works: a share of the leads (``20%``) or a count (``500``)."""

    share: float | None = None
    count: int | None = None

    def of(self, leads: int, total: int) -> int:
        """Leads selected among ``leads`` of ``total`` (a count is spread over folds pro rata)."""
        share = self.share if self.share is not None else (self.count or 0) / max(total, 1)
        return min(leads, max(1, round(share * leads)))

    def __str__(self) -> str:
        return f"{self.share:.0%}" if self.share is not None else str(self.count)


def parse_capacity(text: str) -> Capacity:
    """``20%`` or ``500`` (an :class:`EngineError` otherwise)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
    if match is None:
        raise EngineError(f"--capacity {text!r}: give a share of the leads (20%) or a number of leads (500)")
    number, percent = float(match.group(1)), match.group(2)
    if percent:
        if not 0 < number <= 100:
            raise EngineError(f"--capacity {text!r}: a share must be above 0% and at most 100%")
        return Capacity(share=number / 100)
    if number != int(number) or number < 1:
        raise EngineError(f"--capacity {text!r}: a number of leads must be a whole number of at least 1")
    return Capacity(count=int(number))


@dataclass(frozen=True)
class Settings:
    """The knobs of ``engine learn`` (defaults are its options' defaults)."""

    folds: int = 5
    capacity: Capacity = field(default_factory=lambda: Capacity(share=0.2))
    max_rules: int = 25
    top_points: int = 25
    seed: int = 0
    grid: tuple[float, ...] = GRID


@dataclass(frozen=True)
class Metrics:
    """Out-of-fold figures of one points table at capacity, pooled over the folds."""

    leads: int
    converted: int
    selected: int
    hits: float
    precision: float
    precision_ci: tuple[float, float]
    recall: float
    recall_ci: tuple[float, float]
    lift: float
    auc: float
    auc_range: tuple[float, float]
    rules: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, stable keys, rounded to 4 decimals."""
        return {
            "leads": self.leads, "converted": self.converted, "selected": self.selected,
            "converted_selected": round(self.hits, 4),
            "precision": round(self.precision, 4), "precision_ci": [round(x, 4) for x in self.precision_ci],
            "recall": round(self.recall, 4), "recall_ci": [round(x, 4) for x in self.recall_ci],
            "lift": round(self.lift, 4), "auc": round(self.auc, 4),
            "auc_range": [round(x, 4) for x in self.auc_range], "rules": self.rules,
        }


@dataclass(frozen=True)
class Result:
    """The proposed points (one per feature column), and the before/after figures."""

    points: tuple[int, ...]
    regularisation: float
    before: Metrics
    after: Metrics
    fold_rules: tuple[int, ...]
    notes: tuple[str, ...] = ()


def wilson(successes: float, trials: float) -> tuple[float, float]:
    """The Wilson score interval (95%) of a proportion; (0, 1) with no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _libraries() -> tuple[Any, Any, Any, Any]:
    """numpy and the scikit-learn pieces, or the error that says how to install them."""
    try:
        import numpy as np
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError:
        raise EngineError(f"engine learn needs scikit-learn: {INSTALL_HINT}") from None
    return np, LogisticRegression, StratifiedKFold, ConvergenceWarning


def learn(columns: Sequence[Sequence[float]], converted: Sequence[bool], excluded: Sequence[bool],
          current: Sequence[float], settings: Settings) -> Result:
    """Propose integer points for each column; measure them and ``current`` out-of-fold.

    ``columns`` are the feature table's columns (one value per lead), ``converted`` the
    outcome per lead, ``excluded`` leads rank last under any points.
    """
    np, _lr, folds_of, _cw = _libraries()
    y = np.asarray(converted, dtype=bool)
    positives, n = int(y.sum()), len(y)
    least = settings.folds * settings.folds
    if min(positives, n - positives) < least:
        raise EngineError(
            f"engine learn needs at least {least} converted and {least} not converted leads for "
            f"--folds {settings.folds} (has {positives} and {n - positives})",
        )
    X = np.asarray(columns, dtype=float).T if len(columns) else np.zeros((n, 0))
    out = np.asarray(excluded, dtype=bool)
    now = np.asarray(current, dtype=float)
    fitter = _Fitter(settings)
    splits = list(folds_of(settings.folds, shuffle=True, random_state=settings.seed).split(X, y))
    proposed_by_fold = [fitter.pipeline(X[train], y[train])[0] for train, _test in splits]
    before = _measure(np, X, y, out, splits, [now] * len(splits), settings.capacity, n)
    after = _measure(np, X, y, out, splits, proposed_by_fold, settings.capacity, n)
    points, chosen = fitter.pipeline(X, y)
    before = _with_rules(before, int(np.count_nonzero(now)))
    after = _with_rules(after, int(np.count_nonzero(points)))
    notes = ((f"the solver did not converge in {fitter.unconverged} of {fitter.fits} fits",)
             if fitter.unconverged else ())
    return Result(tuple(int(p) for p in points), chosen, before, after,
                  tuple(int(np.count_nonzero(p)) for p in proposed_by_fold), notes)


def _with_rules(metrics: Metrics, rules: int) -> Metrics:
    return Metrics(**{**metrics.__dict__, "rules": rules})


class _Fitter:
    """Choose the regularisation by inner cross-validation, fit, round and cap: one pipeline."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fits = self.unconverged = 0

    def pipeline(self, X: Any, y: Any) -> tuple[Any, float]:
        """Integer points for ``X``'s columns, and the regularisation chosen."""
        np, _lr, folds_of, _cw = _libraries()
        s = self.settings
        splits = list(folds_of(s.folds, shuffle=True, random_state=s.seed + 1).split(X, y))
        best: tuple[float, float] | None = None
        for strength in s.grid:
            hits = selected = 0.0
            widest = 0
            for train, test in splits:
                beta, importance = self.fit(X[train], y[train], strength)
                widest = max(widest, int(np.count_nonzero(beta)))
                points = self.round(beta, importance)
                got, k = _top(np, X[test] @ points, y[test], s.capacity.of(len(test), len(y)))
                hits, selected = hits + got, selected + k
            precision = hits / selected
            if best is None or precision > best[0] + 1e-12:
                best = (precision, strength)
            if widest > 2 * s.max_rules:
                break  # weaker penalties keep more rules than the cap lets through
        assert best is not None
        beta, importance = self.fit(X, y, best[1])
        return self.round(beta, importance), best[1]

    def fit(self, X: Any, y: Any, strength: float) -> tuple[Any, Any]:
        """Coefficients per column in points-per-unit, and their standardised sizes."""
        np, logistic, _folds, convergence = _libraries()
        spread = X.std(axis=0)
        usable = spread > 0
        beta = np.zeros(X.shape[1])
        importance = np.zeros(X.shape[1])
        if not usable.any():
            return beta, importance
        model = logistic(l1_ratio=1.0, solver="liblinear", C=strength, random_state=self.settings.seed,
                         max_iter=1000)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", convergence)
            model.fit(X[:, usable] / spread[usable], y)
        self.fits += 1
        self.unconverged += any(issubclass(w.category, convergence) for w in caught)
        standardised = model.coef_[0]
        beta[usable] = standardised / spread[usable]
        importance[usable] = np.abs(standardised)
        return beta, importance

    def round(self, beta: Any, importance: Any) -> Any:
        """Integer points, the largest ``top_points``; at most ``max_rules`` of them non-zero."""
        np = _libraries()[0]
        largest = float(np.abs(beta).max()) if beta.size else 0.0
        if largest == 0.0:
            return np.zeros_like(beta)
        points = np.rint(beta * (self.settings.top_points / largest))
        nonzero = np.flatnonzero(points)
        if len(nonzero) > self.settings.max_rules:
            keep = nonzero[np.argsort(-importance[nonzero], kind="stable")[: self.settings.max_rules]]
            capped = np.zeros_like(points)
            capped[keep] = points[keep]
            points = capped
        return points


def _top(np: Any, score: Any, y: Any, k: int) -> tuple[float, int]:
    """Converted leads among the ``k`` best scores, ties at the cut shared pro rata."""
    cut = np.sort(score)[::-1][k - 1]
    above = score > cut
    tied = score == cut
    return float(y[above].sum() + (k - int(above.sum())) * y[tied].mean()), k


def _measure(np: Any, X: Any, y: Any, excluded: Any, splits: list[Any], points: list[Any],
             capacity: Capacity, total: int) -> Metrics:
    from sklearn.metrics import roc_auc_score

    hits = selected = 0.0
    positives = 0
    aucs = []
    for (_train, test), table in zip(splits, points, strict=True):
        score = X[test] @ table
        if excluded[test].any():
            score = np.where(excluded[test], score.min() - 1.0, score)
        got, k = _top(np, score, y[test], capacity.of(len(test), total))
        hits, selected = hits + got, selected + k
        positives += int(y[test].sum())
        aucs.append(float(roc_auc_score(y[test], score)))
    base = positives / len(y)
    precision = hits / selected
    return Metrics(
        leads=len(y), converted=positives, selected=int(selected), hits=hits,
        precision=precision, precision_ci=wilson(hits, selected),
        recall=hits / positives, recall_ci=wilson(hits, positives),
        lift=precision / base if base else 0.0,
        auc=sum(aucs) / len(aucs), auc_range=(min(aucs), max(aucs)), rules=0,
    )
