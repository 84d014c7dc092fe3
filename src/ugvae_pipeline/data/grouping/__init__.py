"""Group construction: which images form each group. Only indices; the model sees pixels.

A group is a row of image indices. Training groups come as a plan ``[epochs, n_groups, B]``
(random groups are redrawn every epoch); evaluation groups as ``[n_groups, B]`` with a
metadata table (one row per group: ``group_id``, ``strategy``, ``group_type`` and the
strategy's own columns: ``attribute``/``value``, ``domain``/``fraction_a``...).

Every strategy draws with vectorised numpy indexing from a seeded ``np.random.default_rng``;
evaluation groups come from one split's images only (``test``, or ``validation`` to choose
options). A group never holds the same image twice (series groups and cluster training groups
excepted: each member draws an image of its class or cluster with replacement); different groups
may share images when a pool is small.

One module per kind of group, and this package re-exports their functions:

- ``common``: the images of a split, the group-size check, the evaluation group table;
- ``random``: random groups, the random training plan and the held-out groups;
- ``series``: MNIST digit-series groups;
- ``labels``: groups formed by labels (training) and groups per value (class groups);
- ``attributes``: attribute groups (CelebA);
- ``domains``: single-domain and mixed groups of two domains;
- ``clusters``: training groups with Dirichlet compositions over pixel clusters (no labels);
- ``strategies``: the strategies by name, the evaluation groups, and the checks of their parameters.

Every error of a group too large for its images names the parameter that set its size
(``train.group_size``, ``groups.heldout.group_size``, ``groups.<strategy>.group_size``).
"""

from ugvae_pipeline.data.grouping.attributes import attribute_groups
from ugvae_pipeline.data.grouping.clusters import cluster_group_plan, pixel_clusters
from ugvae_pipeline.data.grouping.common import group_table, split_indices
from ugvae_pipeline.data.grouping.domains import (
    domain_group_plan,
    domain_groups,
    domain_pools,
    mix_groups,
)
from ugvae_pipeline.data.grouping.labels import (
    COMMON_COLUMNS,
    class_groups,
    condition_masks,
    label_group_plan,
    parse_condition,
    value_groups,
)
from ugvae_pipeline.data.grouping.random import (
    heldout_groups,
    random_group_plan,
    random_groups,
    sample_groups,
)
from ugvae_pipeline.data.grouping.series import (
    SERIES,
    SERIES_DIGITS,
    draw_by_value,
    series_digits,
    series_groups,
    window_groups,
)

__all__ = [
    "COMMON_COLUMNS",
    "SERIES",
    "SERIES_DIGITS",
    "attribute_groups",
    "class_groups",
    "cluster_group_plan",
    "condition_masks",
    "domain_group_plan",
    "domain_groups",
    "domain_pools",
    "draw_by_value",
    "group_table",
    "heldout_groups",
    "label_group_plan",
    "mix_groups",
    "parse_condition",
    "pixel_clusters",
    "random_group_plan",
    "random_groups",
    "sample_groups",
    "series_digits",
    "series_groups",
    "split_indices",
    "value_groups",
    "window_groups",
]
