"""MNIST digit-series groups (``../shared/SPEC.md`` §6, experiment 4.3).

A *series* is an integer sequence (even, odd, fibonacci, primes, ...). Its first
``n_numbers`` numbers are written in decimal, split into digits and the digits concatenated
into one long digit string. A group is ``group_size`` consecutive digits of that string from
a random offset (wrapping around the end), each digit replaced by a random image of that
class drawn from a pool of image indices (held-out images for evaluation).

Adding a series is one entry in ``SERIES``: a function ``n -> list of the first n numbers``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping import draw_by_value


def even_numbers(n: int) -> list[int]:
    """0, 2, 4, ..."""
    return list(range(0, 2 * n, 2))


def odd_numbers(n: int) -> list[int]:
    """1, 3, 5, ..."""
    return list(range(1, 2 * n, 2))


def fibonacci_numbers(n: int) -> list[int]:
    """0, 1, 1, 2, 3, 5, ... (Python integers: exact for any n)."""
    out, a, b = [], 0, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out


def prime_numbers(n: int) -> list[int]:
    """2, 3, 5, 7, 11, ... (sieve, grown until it holds n primes)."""
    limit = max(16, int(n * (np.log(n + 2) + np.log(np.log(n + 2)))) + 16)
    while True:
        sieve = np.ones(limit, dtype=bool)
        sieve[:2] = False
        for p in range(2, int(limit**0.5) + 1):
            if sieve[p]:
                sieve[p * p :: p] = False
        primes = np.flatnonzero(sieve)
        if len(primes) >= n:
            return [int(p) for p in primes[:n]]
        limit *= 2


# name -> first-n-numbers function; the order here is the default order of the group types
SERIES: dict[str, Callable[[int], list[int]]] = {
    "even": even_numbers,
    "odd": odd_numbers,
    "fibonacci": fibonacci_numbers,
    "primes": prime_numbers,
}


def series_digits(name: str, n_numbers: int = 256) -> np.ndarray:
    """The digit string of a series: its first ``n_numbers`` numbers in decimal, concatenated.

    Returns ``int64 [L]`` with values in 0..9 (e.g. even → 0,2,4,6,8,1,0,1,2,...).
    """
    if name not in SERIES:
        raise ValueError(f"unknown series {name!r}; registered: {sorted(SERIES)}")
    if isinstance(n_numbers, bool) or not isinstance(n_numbers, int) or n_numbers < 1:
        raise ValueError(f"n_numbers must be an integer >= 1, got {n_numbers!r}")
    text = "".join(str(v) for v in SERIES[name](n_numbers))
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")


def series_groups(
    labels: np.ndarray,
    pool: np.ndarray,
    groups_per_series: int,
    group_size: int = 128,
    series: list[str] | tuple[str, ...] = ("even", "odd", "fibonacci", "primes"),
    n_numbers: int = 256,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Digit-series groups of images, vectorised.

    Args:
        labels: digit label of every image, ``[N]`` (values 0..9).
        pool: indices into ``labels`` of the images groups may use (e.g. held-out only), ``[P]``.
            Every digit 0..9 that the series use must have at least one image in the pool.
        groups_per_series: groups drawn for each series.
        group_size: B, consecutive digits (and images) per group.
        series: names in ``SERIES``.
        n_numbers: how many numbers of each series make its digit string.
        seed: draws the offsets and the images.

    Returns:
        ``(groups [S·n, B] int64 image indices, table, digits [S·n, B] int64)``; the table has
        one row per group: ``group_id``, ``strategy`` (``'series'``), ``group_type`` (the series
        name) and ``offset`` (start position in the series' digit string). Groups are ordered
        series by series.
    """
    labels = np.asarray(labels)
    pool = np.asarray(pool, dtype=np.int64)
    if groups_per_series < 1 or group_size < 1:
        raise ValueError("groups_per_series and group_size must be >= 1")
    rng = np.random.default_rng(seed)
    digit_rows, offsets, names = [], [], []
    for name in series:
        digits = series_digits(name, n_numbers)
        offset = rng.integers(0, len(digits), size=groups_per_series)
        positions = (offset[:, None] + np.arange(group_size)[None, :]) % len(digits)
        digit_rows.append(digits[positions])
        offsets.append(offset)
        names += [name] * groups_per_series
    digits = np.concatenate(digit_rows)  # [S·n, B]

    pool_labels = labels[pool].astype(np.int64)
    missing = sorted(set(np.unique(digits).tolist()) - set(np.unique(pool_labels).tolist()))
    if missing:
        raise ValueError(f"the image pool has no image of digit(s) {missing} used by the series")
    groups = pool[draw_by_value(digits, pool_labels, rng)]

    n = len(groups)
    table = pd.DataFrame(
        {
            "group_id": np.arange(n, dtype=np.int64),
            "strategy": pd.Series(["series"] * n, dtype="string"),
            "group_type": pd.Series(names, dtype="string"),
            "offset": np.concatenate(offsets).astype(np.int64),
        }
    )
    return groups.astype(np.int64), table, digits
