import time

import numpy as np
import pytest

from ugvae_pipeline.data import series
from ugvae_pipeline.data.series import SERIES, series_digits, series_groups


def _definition_digits(name: str) -> list[int]:
    """Independent restatement of SPEC §6: first 256 numbers, decimal, digits concatenated."""
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


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=3000)
    heldout = np.flatnonzero(rng.random(3000) < 0.3)
    return labels, heldout


@pytest.mark.parametrize("name", ["even", "odd", "fibonacci", "primes"])
def test_series_digits_match_definition(name):
    assert series_digits(name).tolist() == _definition_digits(name)


def test_known_prefixes():
    assert series_digits("even")[:8].tolist() == [0, 2, 4, 6, 8, 1, 0, 1]
    assert series_digits("primes")[:9].tolist() == [2, 3, 5, 7, 1, 1, 1, 3, 1]
    assert series_digits("fibonacci")[:10].tolist() == [0, 1, 1, 2, 3, 5, 8, 1, 3, 2]
    assert SERIES["primes"](256)[-1] == 1619


def test_every_group_is_a_wrapped_window_of_its_series(pool):
    labels, heldout = pool
    groups, table, digits = series_groups(labels, heldout, 30, 128, seed=3)
    assert groups.shape == (120, 128) and digits.shape == (120, 128)
    assert list(table.columns) == ["group_id", "strategy", "group_type", "offset"]
    assert (table["strategy"] == "series").all()
    assert table["group_type"].value_counts().to_dict() == {n: 30 for n in ("even", "odd", "fibonacci", "primes")}
    for row, group, digit_row in zip(table.itertuples(), groups, digits):
        reference = np.array(_definition_digits(row.group_type))
        expected = reference[(row.offset + np.arange(128)) % len(reference)]
        np.testing.assert_array_equal(digit_row, expected)
        np.testing.assert_array_equal(labels[group], expected)  # each image shows its digit
        assert np.isin(group, heldout).all()  # only pool images


def test_wrapping_offset_is_exercised(pool):
    labels, heldout = pool
    _, table, digits = series_groups(labels, heldout, 400, 128, series=["even"], seed=1)
    length = len(series_digits("even"))
    wrapped = table["offset"].to_numpy() > length - 128
    assert wrapped.any()
    row = int(np.flatnonzero(wrapped)[0])
    offset = int(table["offset"][row])
    assert digits[row, length - offset] == 0  # the string starts again with "0"


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
    _, _, digits = series_groups(labels, heldout, 1, 8, series=["squares"], seed=0)
    full = series_digits("squares")
    assert full[:8].tolist() == [0, 1, 4, 9, 1, 6, 2, 5]
    start = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(np.r_[full, full[:8]], 8) == digits[0], axis=1))
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
