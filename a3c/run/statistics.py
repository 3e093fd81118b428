"""Aggregate scores of several runs as Agarwal et al. 2021 (rliable) recommend for few runs: the median,
the interquartile mean (IQM), and percentile-bootstrap confidence intervals.

Pure NumPy, so a sweep's table needs no statistics package. The IQM is the mean of the middle half of
the scores, trimmed as ``scipy.stats.trim_mean(scores, 0.25)`` trims (rliable's ``aggregate_iqm``):
int(n / 4) scores off each end, so with fewer than 4 runs it is their mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """The interquartile mean: the mean of the scores left after int(n / 4) are cut from each end."""
    x = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    if x.size == 0:
        raise ValueError("the IQM of no scores")
    cut = x.size // 4
    return float(x[cut:x.size - cut].mean())


def median(scores: Sequence[float] | np.ndarray) -> float:
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("the median of no scores")
    return float(np.median(x))


def bootstrap_ci(scores: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float],
                 samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of statistic(scores): the runs resampled with replacement
    `samples` times, and the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of the statistic
    over the resamples. Seeded, so that a table computed twice is the same table."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("a bootstrap interval of no scores")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, x.size, size=(samples, x.size))
    values = np.array([statistic(x[row]) for row in picks])
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
