"""The representations scored side by side: the mean mixture responsibilities baseline."""

import numpy as np
import pandas as pd
import pytest

from ugvae_pipeline.evaluation.scores import representations, score_table


def _tables(n_components: int, n_groups: int = 12, group_size: int = 3):
    """Code tables of groups of two types whose images have known responsibilities π: type
    ``left`` puts its mass on component 0, type ``right`` on the last one."""
    rng = np.random.default_rng(0)
    types = np.array(["left", "right"] * (n_groups // 2))
    rows = []
    for g in range(n_groups):
        for i in range(group_size):
            probs = np.full(n_components, 0.0)
            if n_components == 1:
                probs[0] = 1.0  # models without mixture components: one column of ones
            else:
                hot = 0 if types[g] == "left" else n_components - 1
                share = 0.5 + 0.1 * i + 0.01 * g
                probs[hot] = share
                probs[1] = 1 - share
            rows.append(
                {
                    "group_id": g,
                    "group_type": types[g],
                    "position": i,
                    "label": 0,
                    **{f"local_mean_{d:02d}": rng.normal() for d in range(2)},
                    **{f"mixture_prob_{k:02d}": p for k, p in enumerate(probs)},
                }
            )
    local = pd.DataFrame(rows).sample(frac=1, random_state=1)  # rows in any order
    order = rng.permutation(n_groups)  # global_codes in an order of its own
    global_ = pd.DataFrame(
        {
            "group_id": order,
            "group_type": types[order],
            **{f"global_mean_{d:02d}": rng.normal(size=n_groups) for d in range(2)},
        }
    )
    images = rng.integers(0, 256, size=(n_groups * group_size, 1, 4, 4), dtype=np.uint8)
    groups = np.arange(n_groups * group_size).reshape(n_groups, group_size)[order]
    return global_, local, images, groups, types[order]


def test_mean_mixture_probs_is_the_group_mean_of_the_responsibilities():
    global_, local, images, groups, _ = _tables(n_components=4)
    reps = representations(
        global_, local, images, groups, np.random.default_rng(2).integers(0, 3, len(images))
    )
    assert list(reps) == [
        "global_code",
        "mean_local_code",
        "mean_mixture_probs",
        "mean_image",
        "oracle_label_histogram",
    ]
    kind, codes = reps["mean_mixture_probs"]
    assert kind == "baseline" and codes.shape == (12, 4)
    for row, g in enumerate(global_["group_id"]):
        # shares 0.5, 0.6, 0.7 (+ 0.01 g) on the type's component, the rest on component 1
        share = 0.6 + 0.01 * g
        hot = 0 if g % 2 == 0 else 3
        expected = np.zeros(4)
        expected[hot], expected[1] = share, 1 - share
        np.testing.assert_allclose(codes[row], expected, atol=1e-12)


def test_mean_mixture_probs_is_scored_for_mixture_models_only():
    global_, local, images, groups, types = _tables(n_components=4)
    labels = np.random.default_rng(2).integers(0, 3, len(images))
    table = score_table(representations(global_, local, images, groups, labels), types, seed=0)
    row = table.set_index("representation").loc["mean_mixture_probs"]
    assert row["kind"] == "baseline" and row["svm_linear"] == pytest.approx(
        1.0
    )  # π tells the types apart
    # β-VAE / ML-VAE tables: one mixture_prob_00 column of ones, no such baseline
    global_, local, images, groups, types = _tables(n_components=1)
    table = score_table(representations(global_, local, images, groups, labels), types, seed=0)
    assert "mean_mixture_probs" not in set(table["representation"])
    # the caller can say so explicitly
    global_, local, images, groups, _ = _tables(n_components=4)
    assert "mean_mixture_probs" not in representations(
        global_, local, images, groups, labels, mixture=False
    )
