import time

import numpy as np
import pytest

from ugvae_pipeline.data.grouping import series
from ugvae_pipeline.data.grouping.series import SERIES, series_digits, series_groups


def _all_digits(name: str) -> list[int]:
    """Every digit of the first 256 numbers, in decimal, concatenated (the harder variant)."""
    if name == "even":
        numbers = [2 * i for i in range(256)]
    elif name == "odd":
        numbers = [2 * i + 1 for i in range(256)]
    elif name == "fibonacci":
        numbers = [0, 1]
        while len(numbers) < 256:
            numbers.append(numbers[-1] + numbers[-2])
    elif name == "primes":
        numbers, candidate = [], 2
        while len(numbers) < 256:
            if all(candidate % p for p in numbers if p * p <= candidate):
                numbers.append(candidate)
            candidate += 1
    return [int(c) for c in "".join(map(str, numbers))]


def _official_digits(name: str) -> list[int]:
    """Independent restatement of the official ``MnistSeries``: the series' first 256 numbers
    as strings, split into digits, and only the first 256 digits kept (``values[:length]``)."""
    length = 256
    if name == "even":
        values = [d for i in range(length) for d in str(2 * i)]
    elif name == "odd":
        values = [d for i in range(length) for d in str(2 * i + 1)]
    else:
        values = [str(d) for d in _all_digits(name)]
    return [int(v) for v in values[:length]]


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=3000)
    heldout = np.flatnonzero(rng.random(3000) < 0.3)
    return labels, heldout


@pytest.mark.parametrize("name", ["even", "odd", "fibonacci", "primes"])
def test_series_digits_match_the_official_code(name):
    assert series_digits(name).tolist() == _official_digits(name)
    assert len(series_digits(name)) == 256


@pytest.mark.parametrize(
    "name, length", [("even", 713), ("odd", 713), ("fibonacci", 6861), ("primes", 827)]
)
def test_the_harder_variant_keeps_every_digit(name, length):
    digits = series_digits(name, "all_of_first_256_numbers")
    assert digits.tolist() == _all_digits(name) and len(digits) == length


def test_official_even_prefix_and_unknown_option():
    assert series_digits("even")[:19].tolist() == [
        0,
        2,
        4,
        6,
        8,
        1,
        0,
        1,
        2,
        1,
        4,
        1,
        6,
        1,
        8,
        2,
        0,
        2,
        2,
    ]
    with pytest.raises(
        ValueError,
        match=r"groups.series.digits must be one of \['first_256', 'all_of_first_256_numbers'\]",
    ):
        series_digits("even", "all")


def test_known_prefixes():
    assert series_digits("even")[:8].tolist() == [0, 2, 4, 6, 8, 1, 0, 1]
    assert series_digits("primes")[:9].tolist() == [2, 3, 5, 7, 1, 1, 1, 3, 1]
    assert series_digits("fibonacci")[:10].tolist() == [0, 1, 1, 2, 3, 5, 8, 1, 3, 2]
    assert SERIES["primes"](256)[-1] == 1619


def test_every_group_is_a_wrapped_window_of_its_series(pool):
    labels, heldout = pool
    groups, table, digits = series_groups(labels, heldout, 30, 128, seed=3)
    assert table["offset"].between(0, 255).all()
    assert groups.shape == (120, 128) and digits.shape == (120, 128)
    assert list(table.columns) == ["group_id", "strategy", "group_type", "offset"]
    assert (table["strategy"] == "series").all()
    assert table["group_type"].value_counts().to_dict() == {
        n: 30 for n in ("even", "odd", "fibonacci", "primes")
    }
    for row, group, digit_row in zip(table.itertuples(), groups, digits):
        reference = np.array(_official_digits(row.group_type))
        expected = reference[(row.offset + np.arange(128)) % len(reference)]
        np.testing.assert_array_equal(digit_row, expected)
        np.testing.assert_array_equal(labels[group], expected)  # each image shows its digit
        assert np.isin(group, heldout).all()  # only pool images


def test_wrapping_offset_is_exercised(pool):
    labels, heldout = pool
    _, table, digits = series_groups(labels, heldout, 3000, 128, series=["even"], seed=1)
    offsets = table["offset"].to_numpy()
    assert offsets.min() == 0 and offsets.max() == 255  # uniform over 0..255
    rows = np.flatnonzero(offsets == 250)
    assert len(rows)
    official = _official_digits("even")
    # a window at offset 250 takes the last 6 digits, then wraps to the start of the string
    assert digits[rows[0]].tolist() == official[250:] + official[:122]
    assert digits[rows[0], 6:25].tolist() == [
        0,
        2,
        4,
        6,
        8,
        1,
        0,
        1,
        2,
        1,
        4,
        1,
        6,
        1,
        8,
        2,
        0,
        2,
        2,
    ]


def test_harder_variant_groups_are_windows_of_the_whole_string(pool):
    labels, heldout = pool
    _, table, digits = series_groups(
        labels, heldout, 20, 128, series=["fibonacci"], digits="all_of_first_256_numbers", seed=2
    )
    reference = np.array(_all_digits("fibonacci"))
    assert table["offset"].max() > 255  # offsets span the 6,861-digit string
    for row, digit_row in zip(table.itertuples(), digits):
        np.testing.assert_array_equal(
            digit_row, reference[(row.offset + np.arange(128)) % len(reference)]
        )


def test_images_are_drawn_at_random_within_class(pool):
    labels, heldout = pool
    groups, _, digits = series_groups(labels, heldout, 200, 128, seed=5)
    zeros = groups[digits == 0]
    assert len(np.unique(zeros)) == np.isin(heldout, np.flatnonzero(labels == 0)).sum()


def test_seed_reproduces_and_changes(pool):
    labels, heldout = pool
    a = series_groups(labels, heldout, 5, 16, seed=9)[0]
    np.testing.assert_array_equal(a, series_groups(labels, heldout, 5, 16, seed=9)[0])
    assert not np.array_equal(a, series_groups(labels, heldout, 5, 16, seed=10)[0])


def test_registry_extends_with_a_new_sequence(pool, monkeypatch):
    labels, heldout = pool
    monkeypatch.setitem(series.SERIES, "squares", lambda n: [i * i for i in range(n)])
    _, _, digits = series_groups(
        labels, heldout, 1, 8, series=["squares"], digits="all_of_first_256_numbers", seed=0
    )
    full = series_digits("squares", "all_of_first_256_numbers")
    assert full[:8].tolist() == [0, 1, 4, 9, 1, 6, 2, 5]
    start = np.flatnonzero(
        np.all(
            np.lib.stride_tricks.sliding_window_view(np.r_[full, full[:8]], 8) == digits[0], axis=1
        )
    )
    assert len(start) >= 1


def test_errors_name_the_problem(pool):
    labels, heldout = pool
    with pytest.raises(ValueError, match="unknown series"):
        series_groups(labels, heldout, 1, 8, series=["squares"])
    no_sevens = heldout[labels[heldout] != 7]
    with pytest.raises(ValueError, match=r"digit\(s\) \[7\]"):
        series_groups(labels, no_sevens, 2, 128, series=["primes"])


def test_ten_thousand_groups_under_a_second(pool):
    labels, heldout = pool
    start = time.perf_counter()
    groups, _, _ = series_groups(labels, heldout, 2500, 128, seed=0)
    assert groups.shape == (10_000, 128)
    assert time.perf_counter() - start < 1.0


def _official_in_order(group_digits, labels, pool):
    """Independent restatement of the official script's draw: one iterator per class over the
    pool in order; every digit of every group takes the next image of its class."""
    iterators = {d: iter(pool[labels[pool] == d].tolist()) for d in range(10)}
    return np.array([[next(iterators[d]) for d in row] for row in group_digits])


def test_in_order_draws_each_class_in_pool_order_without_repeats(pool):
    labels, heldout = pool
    shuffled = np.random.default_rng(4).permutation(heldout)  # the pool's order is what counts
    groups, table, digits = series_groups(labels, shuffled, 2, 64, seed=3, draw="in_order")
    np.testing.assert_array_equal(groups, _official_in_order(digits, labels, shuffled))
    assert len(np.unique(groups)) == groups.size  # no image twice, across groups too
    np.testing.assert_array_equal(labels[groups], digits)
    # the offsets and digits are drawn as for the default draw; only the images differ
    again, again_table, again_digits = series_groups(labels, shuffled, 2, 64, seed=3)
    np.testing.assert_array_equal(again_digits, digits)
    assert again_table.equals(table)
    assert len(np.unique(again)) < again.size  # with replacement: repeats in 512 draws


def test_in_order_refuses_a_pool_too_small_naming_the_counts(pool):
    labels, heldout = pool
    with pytest.raises(
        ValueError, match=r"more images than the pool has \(.*needed, \d+ in the pool"
    ):
        series_groups(labels, heldout, 50, 128, draw="in_order")
    with pytest.raises(ValueError, match=r"groups.series.draw must be one of"):
        series_groups(labels, heldout, 1, 8, draw="sorted")
