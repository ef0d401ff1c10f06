"""The maths of measurement, on arrays: intervals, a ranking's AUC, a cut at capacity.

Plain functions over numpy arrays so ``engine backtest`` and ``engine learn`` share them.
The statistics come from scipy (Wilson intervals from ``binomtest``, AUC from
``rankdata``'s average ranks, i.e. the Mann-Whitney U statistic), not hand-written loops.
numpy and scipy are imported by the callers' commands only, never at ``engine`` start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: The level of every interval reported.
CONFIDENCE = 0.95

Interval = tuple[float, float] | None


def wilson(successes: int, trials: int) -> Interval:
    """The 95% Wilson score interval of a proportion; None when there are no trials."""
    if trials <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def auc(labels: NDArray[np.bool_], scores: NDArray[np.float64]) -> float | None:
    """Probability that a random converter outranks a random non-converter (ties count half).

    The Mann-Whitney identity on average ranks; None when either class is empty.
    """
    positives = int(labels.sum())
    negatives = int(labels.size - positives)
    if positives == 0 or negatives == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores, method="average")
    u = float(ranks[labels].sum()) - positives * (positives + 1) / 2
    return u / (positives * negatives)


def queue_order(priority: NDArray[np.float64], due: NDArray[np.float64], lead_id: NDArray[Any],
                rows: NDArray[np.int64]) -> NDArray[Any]:
    """Indexes in the order the work queues call handoffs (``engine.queues.sort_key``):
    priority descending (none, as NaN, last), due time ascending (none last), lead id, then
    input row — a total order, so a cut is deterministic and is the queue a team works."""
    keyed = np.where(np.isnan(priority), -np.inf, priority)
    return np.lexsort((rows, lead_id.astype(str), due, -keyed))


@dataclass(frozen=True)
class Cut:
    """The top ``capacity`` of a team's ranked leads, measured against the outcomes."""

    handoffs: int
    converted: int
    positives: int
    base_rate: float

    @property
    def precision(self) -> float | None:
        return self.converted / self.handoffs if self.handoffs else None

    @property
    def recall(self) -> float | None:
        return self.converted / self.positives if self.positives else None

    @property
    def lift(self) -> float | None:
        p = self.precision
        return p / self.base_rate if p is not None and self.base_rate > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Figures with 95% intervals: Wilson for precision and recall; lift's is precision's
        interval over the base rate (the base rate is the whole measured export's, taken as known)."""
        precision_ci = wilson(self.converted, self.handoffs)
        lift_ci = (None if precision_ci is None or self.base_rate <= 0
                   else (precision_ci[0] / self.base_rate, precision_ci[1] / self.base_rate))
        return {
            "handoffs": self.handoffs,
            "converted": self.converted,
            "precision": _r(self.precision),
            "precision_ci": _ri(precision_ci),
            "recall": _r(self.recall),
            "recall_ci": _ri(wilson(self.converted, self.positives)),
            "lift": _r(self.lift),
            "lift_ci": _ri(lift_ci),
        }


def cut(order: NDArray[Any], labels: NDArray[np.bool_], capacity: int | None, positives: int,
        base_rate: float) -> Cut:
    """Measure the first ``capacity`` of ``order`` (all of it when None)."""
    taken = order if capacity is None else order[:capacity]
    return Cut(int(taken.size), int(labels[taken].sum()), positives, base_rate)


def _r(value: float | None) -> float | None:
    """Six decimals: stable JSON, far below any interval's width."""
    return None if value is None else round(value, 6)


def _ri(interval: Interval) -> list[float] | None:
    return None if interval is None else [round(interval[0], 6), round(interval[1], 6)]
