"""MNIST digit-series groups (the paper's global-structure experiment; docs/model.md).

A *series* is an integer sequence (even, odd, fibonacci, primes, ...). Its first 256 numbers
are written in decimal, split into digits and concatenated. As in the official code, only the
**first 256 digits** of that string are kept (``digits="first_256"``): even is
0,2,4,6,8,1,0,1,2,1,4,... A group is ``group_size`` consecutive digits of the string from an
offset drawn uniformly over its positions, wrapping around the end, each digit replaced by a
random image of that class drawn from a pool of image indices (test images for evaluation),
with replacement (``draw="with_replacement"``, the project's protocol). The official script
instead takes each class's images in the order of the pool, each once, continuing from one
group to the next (``draw="in_order"``; it draws them from the training digits).

``digits="all_of_first_256_numbers"`` keeps every digit of the first 256 numbers: strings of
713 (even, odd), 827 (primes) and 6,861 (fibonacci) digits, where the fibonacci digits are
nearly uniform. It is a harder variant, not the official task.

Adding a series is one entry in ``SERIES``: a function ``n -> list of the first n numbers``.

:func:`window_groups` (random wrapped windows of a sequence) and :func:`draw_by_value` (a random
image of each value) are the vectorised steps of such groups, for any sequence of labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


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


SERIES_LENGTH = 256  # numbers of each series written out, and digits kept (official: 256)
SERIES_DIGITS = ("first_256", "all_of_first_256_numbers")  # official | the harder variant
SERIES_DRAWS = ("with_replacement", "in_order")  # the project's | the official script's


def series_digits(name: str, digits: str = "first_256") -> np.ndarray:
    """The digit string of a series: its first 256 numbers in decimal, concatenated, then cut
    to the first 256 digits (``first_256``, official) or kept whole (``all_of_first_256_numbers``).

    Returns ``int64 [L]`` with values in 0..9 (e.g. even → 0,2,4,6,8,1,0,1,2,...).
    """
    if name not in SERIES:
        raise ValueError(f"unknown series {name!r}; registered: {sorted(SERIES)}")
    if digits not in SERIES_DIGITS:
        raise ValueError(
            f"groups.series.digits must be one of {list(SERIES_DIGITS)}, got {digits!r}"
        )
    text = "".join(str(v) for v in SERIES[name](SERIES_LENGTH))
    if digits == "first_256":
        text = text[:SERIES_LENGTH]
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")


def window_groups(
    sequence: np.ndarray, n_groups: int, group_size: int, rng: np.random.Generator
) -> np.ndarray:
    """``[n_groups, B]`` windows of B consecutive items of ``sequence`` from random offsets (wrapping)."""
    sequence = np.asarray(sequence)
    offsets = rng.integers(0, len(sequence), size=n_groups)
    return sequence[(offsets[:, None] + np.arange(group_size)) % len(sequence)]


def draw_by_value(
    values: np.ndarray, pool_values: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Replace each entry of ``values`` (any shape) by the index of a random image of that value.

    ``pool_values`` ``[N]`` is the value (e.g. class label) of every candidate image; the result
    has the shape of ``values`` and holds row positions into ``pool_values``, drawn uniformly
    (with replacement) among the images whose value matches.

    Raises:
        ValueError: a value that no image in the pool has.
    """
    order = np.argsort(pool_values, kind="stable")
    kinds, starts, counts = np.unique(pool_values[order], return_index=True, return_counts=True)
    slot = np.searchsorted(kinds, values)
    found = (slot < len(kinds)) & (kinds[np.minimum(slot, len(kinds) - 1)] == values)
    if not found.all():
        raise ValueError(
            f"no image with value(s) {sorted(np.unique(values[~found]).tolist())}; values present: {kinds.tolist()}"
        )
    offsets = (rng.random(np.shape(values)) * counts[slot]).astype(np.int64)
    return order[starts[slot] + offsets]


def take_in_order(values: np.ndarray, pool_values: np.ndarray) -> np.ndarray:
    """Replace each entry of ``values`` (any shape, read row by row) by the next unused image of
    that value: the k-th occurrence of value v takes the k-th image of value v in ``pool_values``
    order, so no image is taken twice (the official script's per-class iterators).

    Returns row positions into ``pool_values`` of the shape of ``values``.

    Raises:
        ValueError: a value with fewer images in the pool than occurrences (naming both counts),
            or none at all.
    """
    flat = np.asarray(values).ravel()
    order = np.argsort(pool_values, kind="stable")
    kinds, starts, counts = np.unique(pool_values[order], return_index=True, return_counts=True)
    needed_kinds, needed = np.unique(flat, return_counts=True)
    slot = np.searchsorted(kinds, needed_kinds)
    have = np.where(
        (slot < len(kinds)) & (kinds[np.minimum(slot, len(kinds) - 1)] == needed_kinds),
        counts[np.minimum(slot, len(kinds) - 1)],
        0,
    )
    short = needed > have
    if short.any():
        detail = ", ".join(
            f"{v}: {n} needed, {h} in the pool"
            for v, n, h in zip(needed_kinds[short], needed[short], have[short])
        )
        raise ValueError(
            f"drawing in order without repeats needs more images than the pool has ({detail}); "
            "use fewer or smaller groups (groups.series.groups_per_series, group_size), a larger "
            "split, or groups.series.draw=with_replacement"
        )
    by_value = np.argsort(flat, kind="stable")  # occurrences of each value, in reading order
    sorted_values = flat[by_value]
    rank = np.empty(len(flat), dtype=np.int64)
    rank[by_value] = np.arange(len(flat)) - np.searchsorted(sorted_values, sorted_values)
    first = starts[np.searchsorted(kinds, flat)]
    return order[first + rank].reshape(np.shape(values))


def series_groups(
    labels: np.ndarray,
    pool: np.ndarray,
    groups_per_series: int,
    group_size: int = 128,
    series: list[str] | tuple[str, ...] = ("even", "odd", "fibonacci", "primes"),
    digits: str = "first_256",
    seed: int = 0,
    draw: str = "with_replacement",
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Digit-series groups of images, vectorised.

    Args:
        labels: digit label of every image, ``[N]`` (values 0..9).
        pool: indices into ``labels`` of the images groups may use (e.g. held-out only), ``[P]``.
            Every digit 0..9 that the series use must have at least one image in the pool.
        groups_per_series: groups drawn for each series.
        group_size: B, consecutive digits (and images) per group.
        series: names in ``SERIES``.
        digits: ``first_256`` (official) or ``all_of_first_256_numbers`` (see :func:`series_digits`).
        seed: draws the offsets and the images.
        draw: ``with_replacement`` (each digit a random image of its class) or ``in_order``
            (the official script: each class's images in pool order, none twice, series by
            series; see :func:`take_in_order`).

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
    if draw not in SERIES_DRAWS:
        raise ValueError(f"groups.series.draw must be one of {list(SERIES_DRAWS)}, got {draw!r}")
    rng = np.random.default_rng(seed)
    digit_rows, offsets, names = [], [], []
    for name in series:
        string = series_digits(name, digits)
        offset = rng.integers(0, len(string), size=groups_per_series)
        positions = (offset[:, None] + np.arange(group_size)[None, :]) % len(string)
        digit_rows.append(string[positions])
        offsets.append(offset)
        names += [name] * groups_per_series
    group_digits = np.concatenate(digit_rows)  # [S·n, B]

    pool_labels = labels[pool].astype(np.int64)
    missing = sorted(set(np.unique(group_digits).tolist()) - set(np.unique(pool_labels).tolist()))
    if missing:
        raise ValueError(f"the image pool has no image of digit(s) {missing} used by the series")
    if draw == "in_order":
        groups = pool[take_in_order(group_digits, pool_labels)]
    else:
        groups = pool[draw_by_value(group_digits, pool_labels, rng)]

    n = len(groups)
    table = pd.DataFrame(
        {
            "group_id": np.arange(n, dtype=np.int64),
            "strategy": pd.Series(["series"] * n, dtype="string"),
            "group_type": pd.Series(names, dtype="string"),
            "offset": np.concatenate(offsets).astype(np.int64),
        }
    )
    return groups.astype(np.int64), table, group_digits
