"""Grouping strategies and their vectorised helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ugvae_pipeline.data.grouping import (
    attribute_groups,
    class_groups,
    domain_group_plan,
    domain_groups,
    draw_by_value,
    heldout_groups,
    label_group_plan,
    mix_groups,
    random_group_plan,
    random_groups,
    sample_groups,
    split_indices,
    window_groups,
)
from ugvae_pipeline.data.grouping.strategies import evaluation_groups
from ugvae_pipeline.data.splits import image_table, random_split


def _distinct_rows(groups: np.ndarray) -> bool:
    ordered = np.sort(groups, axis=1)
    return bool((np.diff(ordered, axis=1) != 0).all())


@pytest.fixture
def attribute_metadata() -> pd.DataFrame:
    """400 images, half held out; Male alternates, Black_Hair on 1/4, Blond_Hair on another 1/4."""
    n = 400
    rng = np.random.default_rng(0)
    hair = rng.permutation(np.repeat([0, 1, 2, 3], n // 4))
    return image_table(
        np.full(n, -1),
        random_split(n, 0.1, 0.5, 0),
        "celeba",
        Male=np.arange(n) % 2 == 0,
        Black_Hair=hair == 1,
        Blond_Hair=(hair == 2) | (np.arange(n) % 50 == 0),  # a few images have both
    )


def test_sample_groups_are_uniform_without_replacement():
    pool = np.arange(100, 130)
    groups = sample_groups(pool, 3000, 7, np.random.default_rng(0))
    assert groups.shape == (3000, 7) and _distinct_rows(groups) and np.isin(groups, pool).all()
    counts = np.bincount(groups.ravel() - 100, minlength=30)
    expected = 3000 * 7 / 30
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_random_groups_are_seeded():
    indices = np.arange(50)
    np.testing.assert_array_equal(
        random_groups(indices, 4, 10, 1), random_groups(indices, 4, 10, 1)
    )
    assert not np.array_equal(random_groups(indices, 4, 10, 1), random_groups(indices, 4, 10, 2))


def test_window_groups_wrap_around():
    groups = window_groups(np.arange(10), 200, 4, np.random.default_rng(0))
    assert ((groups[:, 1:] - groups[:, :-1]) % 10 == 1).all() and set(groups[:, 0]) == set(
        range(10)
    )


def test_draw_by_value_matches_each_value():
    pool_labels = np.random.default_rng(1).integers(0, 10, 600)
    values = np.tile(np.arange(10), (50, 3))
    drawn = draw_by_value(values, pool_labels, np.random.default_rng(2))
    assert drawn.shape == values.shape
    np.testing.assert_array_equal(pool_labels[drawn], values)
    assert (
        len(np.unique(drawn[values == 3])) > 0.8 * (pool_labels == 3).sum()
    )  # spread over the class
    with pytest.raises(ValueError, match=r"no image with value\(s\) \[11\]"):
        draw_by_value(np.array([1, 11]), pool_labels, np.random.default_rng(0))


def test_mixed_group_proportion_is_binomial():
    pool_a, pool_b = np.arange(0, 500), np.arange(500, 800)
    p, n_groups, size = 0.3, 400, 64
    groups = mix_groups(pool_a, pool_b, n_groups, size, p, np.random.default_rng(0))
    assert _distinct_rows(groups)
    from_a = (groups < 500).sum(axis=1)
    # the total from A is Binomial(n_groups * B, p): within 4 standard deviations
    total, n = from_a.sum(), n_groups * size
    assert abs(total - n * p) < 4 * np.sqrt(n * p * (1 - p))
    # and the per-group spread is the binomial one, not a fixed count
    assert 0.7 * size * p * (1 - p) < from_a.var() < 1.3 * size * p * (1 - p)


def test_attribute_groups_share_the_attribute_and_are_test_images(attribute_metadata):
    groups, table = attribute_groups(
        attribute_metadata, ["Black_Hair=1", "Blond_Hair=1"], 5, 20, seed=0
    )
    assert groups.shape == (10, 20) and _distinct_rows(groups)
    assert (attribute_metadata["split"].to_numpy()[groups] == "test").all()
    black = table["group_type"].to_numpy() == "Black_Hair=1"
    assert attribute_metadata["Black_Hair"].to_numpy()[groups[black]].all()
    assert attribute_metadata["Blond_Hair"].to_numpy()[groups[~black]].all()
    assert not attribute_metadata["Blond_Hair"].to_numpy()[groups[black]].any()  # exclusive
    assert list(table.columns) == ["group_id", "strategy", "group_type", "attribute", "value"]
    assert set(table["strategy"]) == {"attribute"} and set(table["attribute"]) == {
        "Black_Hair",
        "Blond_Hair",
    }


def test_contrast_groups_and_random_third_class(attribute_metadata):
    groups, table = attribute_groups(
        attribute_metadata, ["Male=1", "Male=0"], 4, 30, seed=1, n_random_groups=3
    )
    assert groups.shape == (11, 30) and list(table["group_id"]) == list(range(11))
    male = attribute_metadata["Male"].to_numpy()
    assert male[groups[:4]].all() and not male[groups[4:8]].any()
    assert list(table["group_type"][8:]) == ["random"] * 3 and set(table["strategy"][8:]) == {
        "random"
    }


def test_unknown_attribute_lists_valid_names(attribute_metadata):
    with pytest.raises(
        ValueError, match=r"unknown attribute 'Red_Hair'.*'Male', 'Black_Hair', 'Blond_Hair'"
    ):
        attribute_groups(attribute_metadata, ["Red_Hair=1"], 2, 4, seed=0)


def test_too_few_images_reports_the_counts(attribute_metadata):
    heldout = attribute_metadata[attribute_metadata["split"] == "test"]
    n_male = int(heldout["Male"].sum())
    with pytest.raises(
        ValueError,
        match=rf"too few test images to fill a group of 150: \{{'Male=1': {n_male}\}} .*; "
        rf"set groups.attribute.group_size \(now 150\) to at most {n_male}, or use more images",
    ):
        attribute_groups(attribute_metadata, ["Male=1"], 2, 150, seed=0)
    with pytest.raises(ValueError, match=r"list only group types that have test images"):
        attribute_groups(attribute_metadata, ["Male=1", "Black_Hair=1", "Blond_Hair=0"], 2, 5, 0)


def test_class_groups_share_a_label():
    labels = np.repeat(np.arange(4), 30)
    metadata = image_table(labels, np.array(["test", "train"] * 60), "digits")
    groups, table = class_groups(metadata, n_groups=3, group_size=10, seed=0)
    assert groups.shape == (12, 10)
    assert (labels[groups] == labels[groups[:, :1]]).all()
    assert list(table["group_type"][::3]) == ["label=0", "label=1", "label=2", "label=3"]
    assert (metadata["split"].to_numpy()[groups] == "test").all()


def test_class_groups_need_labels():
    metadata = image_table(np.full(10, -1), np.array(["test"] * 10), "folder")
    with pytest.raises(ValueError, match="need labelled images"):
        class_groups(metadata, 1, 2, 0)


@pytest.fixture
def domain_metadata() -> pd.DataFrame:
    table = image_table(np.zeros(700), random_split(700, 0.1, 0.5, 0), "mixed")
    table["domain"] = pd.Series(["A"] * 400 + ["B"] * 300, dtype="string")
    return table


def test_domain_groups_single_and_mixed(domain_metadata):
    groups, table = domain_groups(domain_metadata, n_groups=30, group_size=40, seed=0, p=0.5)
    domain = domain_metadata["domain"].to_numpy()
    assert (
        groups.shape == (90, 40) and (domain_metadata["split"].to_numpy()[groups] == "test").all()
    )
    assert (domain[groups[:30]] == "A").all() and (domain[groups[30:60]] == "B").all()
    mixed_share = (domain[groups[60:]] == "A").mean()
    assert abs(mixed_share - 0.5) < 4 * np.sqrt(0.25 / (30 * 40))
    np.testing.assert_allclose(table["fraction_a"], (domain[groups] == "A").mean(axis=1))
    assert list(table["group_type"].unique()) == ["A", "B", "mixed"]


def test_domain_training_plan_uses_training_images(domain_metadata):
    plan = domain_group_plan(domain_metadata, group_size=50, epochs=3, seed=1, p=0.8)
    n_train = int((domain_metadata["split"] == "train").sum())
    assert plan.shape == (3, n_train // 50, 50)
    assert (domain_metadata["split"].to_numpy()[plan] == "train").all()
    share = (domain_metadata["domain"].to_numpy()[plan] == "A").mean()
    assert abs(share - 0.8) < 4 * np.sqrt(0.16 / plan.size)


def test_domain_groups_need_a_domain_column():
    metadata = image_table(np.zeros(10), np.array(["test"] * 10), "x")
    with pytest.raises(ValueError, match="data.source=mixed"):
        domain_groups(metadata, 1, 2, 0)


def test_label_group_plan_forms_single_label_groups_of_training_images_redrawn_each_epoch():
    labels = np.repeat(np.arange(4), 50)  # 4 classes of 50; half held out
    labels[:5] = -1  # unlabelled images never enter a group
    metadata = image_table(labels, random_split(len(labels), 0.1, 0.5, 0), "digits")
    plan = label_group_plan(metadata, "label", group_size=8, epochs=3, seed=0)
    train = set(np.flatnonzero(metadata["split"] == "train"))
    per_class = [
        np.sum((labels == c) & (metadata["split"] == "train").to_numpy()) // 8 for c in range(4)
    ]
    assert plan.shape == (3, sum(per_class), 8)
    assert set(plan.ravel()) <= train and (labels[plan] >= 0).all()
    assert (labels[plan] == labels[plan][..., :1]).all()  # one label per group
    assert all(_distinct_rows(epoch) for epoch in plan)
    assert not np.array_equal(plan[0], plan[1])
    np.testing.assert_array_equal(plan, label_group_plan(metadata, "label", 8, 3, seed=0))
    with pytest.raises(
        ValueError, match=r"groups.training.label_column='digit' is not a metadata column"
    ):
        label_group_plan(metadata, "digit", 8, 1, 0)
    with pytest.raises(
        ValueError, match=r"the largest class has \d+\); lower train.group_size to at most"
    ):
        label_group_plan(metadata, "label", 40, 1, 0)
    unlabelled = image_table(np.full(20, -1), random_split(20, 0.1, 0.5, 0), "folder")
    with pytest.raises(ValueError, match="need labelled training images"):
        label_group_plan(unlabelled, "label", 4, 1, 0)


def test_label_group_plan_keeps_minus_one_as_a_class_outside_the_label_column(caplog):
    """-1 marks an unlabelled image only in ``label``; a ±1 column keeps both of its classes,
    and a class too small for one group is left out with a warning that names it."""
    n = 120
    metadata = image_table(np.full(n, -1), np.array(["train"] * n), "folder")
    metadata["smiling"] = np.where(np.arange(n) % 2 == 0, 1, -1)
    metadata["hat"] = np.where(np.arange(n) < 6, "yes", "no")  # 6 images: too few for a group of 8
    plan = label_group_plan(metadata, "smiling", group_size=8, epochs=1, seed=0)
    smiling = metadata["smiling"].to_numpy()[plan[0]]
    assert (smiling == smiling[:, :1]).all()
    assert set(smiling[:, 0]) == {-1, 1}  # both classes form groups
    assert plan.shape == (1, 2 * (60 // 8), 8)
    with caplog.at_level("WARNING", logger="ugvae_pipeline.data.grouping"):
        plan = label_group_plan(metadata, "hat", group_size=8, epochs=1, seed=0)
    assert (metadata["hat"].to_numpy()[plan] == "no").all()
    assert "leave out 1 value(s)" in caplog.text and "yes (6)" in caplog.text


def test_label_group_plan_names_an_empty_column():
    metadata = image_table(np.zeros(10), np.array(["train"] * 10), "folder")
    metadata["hair"] = pd.Series([None] * 10, dtype="string")
    with pytest.raises(
        ValueError,
        match="'hair' has no value on any training image: set groups.training.label_column",
    ):
        label_group_plan(metadata, "hair", 2, 1, 0)


def test_folder_groups_without_an_image_folder_name_the_column_they_need():
    from ugvae_pipeline.data.grouping.strategies import EVALUATION_STRATEGIES

    digits = image_table(np.repeat(np.arange(2), 10), np.array(["test"] * 20), "digits")
    with pytest.raises(ValueError, match=r"strategy=folder needs a 'folder' metadata column"):
        EVALUATION_STRATEGIES["folder"](digits, {"n_groups": 1, "group_size": 2, "seed": 0}, "test")


# --- held-out groups, and every group-size error naming the parameter that set the size ------


def _folder_metadata(n_each: int) -> pd.DataFrame:
    """Two sub-folders of ``n_each`` unlabelled images, split 70 / 10 / 20 as image_folder does."""
    n = 2 * n_each
    table = image_table(np.full(n, -1), random_split(n, 0.1, 0.2, 0), "image_folder")
    table["folder"] = pd.Series(["cats"] * n_each + ["dogs"] * n_each, dtype="string")
    return table


def test_heldout_groups_take_the_training_group_size_at_most_the_validation_images(caplog):
    metadata = _folder_metadata(200)  # 40 validation images
    validation = split_indices(metadata, "validation")
    groups = heldout_groups(metadata, n_groups=7, group_size=None, seed=0, train_group_size=16)
    assert groups.shape == (7, 16) and np.isin(groups, validation).all()
    assert _distinct_rows(groups)
    # the default reproduces the groups of an explicit size equal to train.group_size
    np.testing.assert_array_equal(groups, random_groups(validation, 7, 16, 0))
    np.testing.assert_array_equal(groups, heldout_groups(metadata, 7, 16, 0, train_group_size=99))
    assert "held-out groups of" not in caplog.text
    small = _folder_metadata(40)  # 8 validation images: groups of 8, with a warning
    with caplog.at_level("WARNING", logger="ugvae_pipeline.data.grouping"):
        groups = heldout_groups(small, n_groups=7, group_size=None, seed=0, train_group_size=16)
    assert groups.shape == (7, 8) and _distinct_rows(groups)
    assert set(groups.ravel()) == set(split_indices(small, "validation"))
    assert "held-out groups of 8 images" in caplog.text and "train.group_size=16" in caplog.text


@pytest.mark.parametrize(
    "build, message",
    [
        (  # a size given is used as given
            lambda m: heldout_groups(m, 7, 12, 0, train_group_size=4),
            "group size 12 is larger than the 8 validation images; set groups.heldout.group_size "
            "(now 12) to at most 8 (or to null: train.group_size, at most the validation images), "
            "or use more images",
        ),
        (
            lambda m: random_group_plan(split_indices(m, "train"), 64, epochs=1, seed=0),
            "group size 64 is larger than the 56 training images; set train.group_size (now 64) "
            "to at most 56, or use more images",
        ),
    ],
)
def test_group_size_errors_name_the_parameter_that_set_the_size(build, message):
    with pytest.raises(ValueError) as err:
        build(_folder_metadata(40))  # 56 train, 8 validation, 16 test images
    assert message == str(err.value)


def _groups_params(strategy: str, size: int, n_random: int = 2) -> dict:
    return {
        "evaluation": {
            "strategy": strategy,
            "split": "test",
            "random": {"n_groups": n_random, "seed": 1},
        },
        strategy: {"n_groups": 2, "group_size": size, "seed": 0},
    }


def test_evaluation_random_groups_name_the_size_of_the_structured_groups():
    metadata = _folder_metadata(40)  # 16 test images: sub-folders too small for groups of 64
    params = _groups_params("folder", 64)
    with pytest.raises(ValueError) as err:
        evaluation_groups(metadata, params, {"source": "image_folder"})
    assert str(err.value) == (
        "group size 64 is larger than the 16 test images (groups.evaluation.random draws random "
        "groups of the size of the folder groups); set groups.folder.group_size (now 64) to at "
        "most 16, set groups.evaluation.random.n_groups=0, or use more images"
    )
    params["folder"]["group_size"] = 16
    groups, table = evaluation_groups(metadata, params, {"source": "image_folder"})
    assert groups.shape == (2, 16) and list(table["group_type"]) == ["random", "random"]
    assert (metadata["split"].to_numpy()[groups] == "test").all()
    assert list(table["group_id"]) == [0, 1] and len(table["member_labels"][0]) == 16
    params["folder"]["group_size"] = 6  # now both sub-folders fill a group
    groups, table = evaluation_groups(metadata, params, {"source": "image_folder"})
    assert list(table["group_type"]) == ["folder=cats"] * 2 + ["folder=dogs"] * 2 + ["random"] * 2
    folder = metadata["folder"].to_numpy()
    assert (folder[groups[:2]] == "cats").all() and (folder[groups[2:4]] == "dogs").all()


def test_domain_group_sizes_name_their_parameter(domain_metadata):
    n_test_b = int(
        ((domain_metadata["domain"] == "B") & (domain_metadata["split"] == "test")).sum()
    )
    with pytest.raises(
        ValueError,
        match=rf"larger than the {n_test_b} test images of domain 'B'; set "
        rf"groups.domain.group_size \(now 160\) to at most {n_test_b}",
    ):
        domain_groups(domain_metadata, n_groups=2, group_size=160, seed=0)
    n_train_b = int(
        ((domain_metadata["domain"] == "B") & (domain_metadata["split"] == "train")).sum()
    )
    with pytest.raises(
        ValueError,
        match=rf"larger than the {n_train_b} training images of domain 'B'; set "
        rf"train.group_size \(now 150\) to at most {n_train_b}",
    ):
        domain_group_plan(domain_metadata, group_size=150, epochs=1, seed=0)
