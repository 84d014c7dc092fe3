"""Group construction: which images form each group. Only indices; the model sees pixels.

A group is a row of image indices. Training groups come as a plan ``[epochs, n_groups, B]``
(random groups are redrawn every epoch); evaluation groups as ``[n_groups, B]`` with a
metadata table (one row per group: ``group_id``, ``strategy``, ``group_type`` and the
strategy's own columns: ``attribute``/``value``, ``domain``/``fraction_a``...).

Every strategy draws with vectorised numpy indexing from a seeded ``np.random.default_rng``;
evaluation groups come from ``split == 'heldout'`` images only. A group never holds the same
image twice; different groups may share images when a pool is small.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def split_indices(metadata: pd.DataFrame, split: str) -> np.ndarray:
    """Row positions of the images of one split (``train`` or ``heldout``)."""
    indices = np.flatnonzero((metadata["split"] == split).to_numpy())
    if len(indices) == 0:
        raise ValueError(f"no images in split {split!r}; splits present: {sorted(metadata['split'].unique())}")
    return indices


def _check_group_size(n_available: int, group_size: int, what: str) -> None:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group size must be an integer >= 1, got {group_size!r}")
    if group_size > n_available:
        raise ValueError(
            f"group size {group_size} is larger than the {n_available} {what}; "
            f"lower train.group_size (or groups.*.group_size) to at most {n_available}, or use more data"
        )


# --- vectorised helpers ---------------------------------------------------------------------


def sample_groups(
    pool: np.ndarray, n_groups: int, group_size: int, rng: np.random.Generator, what: str = "images available"
) -> np.ndarray:
    """``n_groups`` groups ``[n_groups, B]`` of ``pool``, each a uniform draw without replacement.

    Vectorised: rows of independent permutations of the pool are cut into groups of B, so the
    work and memory are about the size of the output (at most twice), whatever ``n_groups``.
    Groups cut from the same permutation are disjoint.
    """
    pool = np.asarray(pool, dtype=np.int64)
    _check_group_size(len(pool), group_size, what)
    per_permutation = len(pool) // group_size
    n_permutations = -(-n_groups // per_permutation)
    order = rng.permuted(np.tile(np.arange(len(pool)), (n_permutations, 1)), axis=1)
    groups = order[:, : per_permutation * group_size].reshape(-1, group_size)[:n_groups]
    return pool[groups]


def window_groups(sequence: np.ndarray, n_groups: int, group_size: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_groups, B]`` windows of B consecutive items of ``sequence`` from random offsets (wrapping)."""
    sequence = np.asarray(sequence)
    offsets = rng.integers(0, len(sequence), size=n_groups)
    return sequence[(offsets[:, None] + np.arange(group_size)) % len(sequence)]


def draw_by_value(values: np.ndarray, pool_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
        raise ValueError(f"no image with value(s) {sorted(np.unique(values[~found]).tolist())}; values present: {kinds.tolist()}")
    offsets = (rng.random(np.shape(values)) * counts[slot]).astype(np.int64)
    return order[starts[slot] + offsets]


def mix_groups(
    pool_a: np.ndarray, pool_b: np.ndarray, n_groups: int, group_size: int, p: float, rng: np.random.Generator
) -> np.ndarray:
    """``[n_groups, B]`` groups whose every member comes from ``pool_a`` with probability ``p``.

    The number from A in a group is Binomial(B, p); members are distinct (pools are disjoint).
    """
    if not 0 <= p <= 1:
        raise ValueError(f"groups.domain.p must be a probability in [0, 1], got {p!r}")
    from_a = sample_groups(pool_a, n_groups, group_size, rng, "images of domain A")
    from_b = sample_groups(pool_b, n_groups, group_size, rng, "images of domain B")
    return np.where(rng.random((n_groups, group_size)) < p, from_a, from_b)


# --- random groups ----------------------------------------------------------------------------


def random_group_plan(indices: np.ndarray, group_size: int, epochs: int, seed: int) -> np.ndarray:
    """I.i.d. random groups, redrawn every epoch: ``[epochs, len(indices) // B, B]``.

    Each epoch is a fresh permutation of ``indices`` cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), so every image is seen about once per epoch.
    """
    _check_group_size(len(indices), group_size, "training images")
    rng = np.random.default_rng(seed)
    n_groups = len(indices) // group_size
    plan = np.stack([rng.permutation(indices)[: n_groups * group_size] for _ in range(epochs)])
    return plan.reshape(epochs, n_groups, group_size).astype(np.int64)


def label_group_plan(
    metadata: pd.DataFrame, column: str, group_size: int, epochs: int, seed: int
) -> np.ndarray:
    """Groups formed by labels, redrawn every epoch: ``[epochs, n_groups, B]`` of training images,
    the members of each group sharing one value of ``column``. Missing values are left out, and
    so is -1 in the ``label`` column (the sources' mark for an unlabelled image); in any other
    column -1 is a value like any other (a ±1 attribute keeps both classes).

    Each epoch every class's images are shuffled and cut into groups of B (the remainder that
    does not fill a group is left out of that epoch), and the order of the groups is shuffled.
    The weak supervision of ML-VAE; never used for UG-VAE's own (unsupervised) training.
    """
    if column not in metadata.columns:
        raise ValueError(
            f"groups.training.label_column={column!r} is not a metadata column; columns: {list(metadata.columns)}"
        )
    train = split_indices(metadata, "train")
    values = metadata[column].to_numpy()[train]
    labelled = pd.notna(values)
    if column == "label":
        labelled &= values.astype(str) != "-1"
    train, values = train[labelled], values[labelled]
    if not len(train):
        raise ValueError(
            f"groups formed by labels need labelled training images, but {column!r} has no value "
            + ("other than -1 (an unlabelled source)" if column == "label" else "on any training image")
            + ": set groups.training.label_column to a labelled "
            "metadata column (e.g. a CelebA attribute such as Male), or use a model trained without "
            "labels (model.name=ugvae, beta_vae or gmvae)"
        )
    names, classes = np.unique(values.astype(str), return_inverse=True)
    pools = [train[classes == c] for c in range(classes.max() + 1)]
    per_class = np.array([len(pool) // group_size for pool in pools])
    if per_class.sum() == 0:
        largest = max(len(pool) for pool in pools)
        raise ValueError(
            f"no value of {column!r} has train.group_size={group_size} training images (the largest class "
            f"has {largest}); lower train.group_size to at most {largest}"
        )
    if (per_class == 0).any():
        small = [f"{name} ({len(pool)})" for name, pool, n in zip(names, pools, per_class) if n == 0]
        log.warning(
            "groups formed by %r leave out %d value(s) with fewer than train.group_size=%d training "
            "images: %s", column, len(small), group_size, ", ".join(small),
        )
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        groups = np.concatenate(
            [rng.permutation(pool)[: n * group_size].reshape(n, group_size) for pool, n in zip(pools, per_class)]
        )
        plan.append(groups[rng.permutation(len(groups))])
    return np.stack(plan).astype(np.int64)


def random_groups(indices: np.ndarray, n_groups: int, group_size: int, seed: int) -> np.ndarray:
    """``n_groups`` random groups ``[n_groups, B]``, each drawn without replacement."""
    return sample_groups(indices, n_groups, group_size, np.random.default_rng(seed))


def group_table(n_groups: int, strategy: str, group_type: str | list[str], **columns) -> pd.DataFrame:
    """Metadata of evaluation groups: one row per group, then any strategy-specific ``columns``."""
    types = [group_type] * n_groups if isinstance(group_type, str) else list(group_type)
    table = pd.DataFrame(
        {
            "group_id": np.arange(n_groups, dtype=np.int64),
            "strategy": pd.Series([strategy] * n_groups, dtype="string"),
            "group_type": pd.Series(types, dtype="string"),
        }
    )
    for name, values in columns.items():
        table[name] = values
    return table


# --- groups that share a metadata value (attribute, class) ------------------------------------

COMMON_COLUMNS = ("image_id", "split", "source", "filename")


def parse_condition(spec: str, metadata: pd.DataFrame) -> tuple[str, object]:
    """``"Black_Hair=1"`` → ``("Black_Hair", True)``: a column and a value of its dtype.

    A bare name (``"Male"``) means ``=1``. Bool columns accept 1/0, true/false, -1 (CelebA's ±1).

    Raises:
        ValueError: an unknown column, listing the valid ones, or a value that does not parse.
    """
    column, _, raw = str(spec).partition("=")
    column, raw = column.strip(), (raw.strip() or "1")
    if column not in metadata.columns or column in COMMON_COLUMNS:
        valid = [name for name in metadata.columns if name not in COMMON_COLUMNS]
        raise ValueError(f"group type {spec!r}: unknown attribute {column!r}; valid attributes: {valid}")
    dtype = metadata[column].dtype
    if pd.api.types.is_bool_dtype(dtype):
        truth = {"1": True, "true": True, "0": False, "false": False, "-1": False}
        if raw.lower() not in truth:
            raise ValueError(f"group type {spec!r}: {column} is true/false; write {column}=1 or {column}=0")
        return column, truth[raw.lower()]
    if pd.api.types.is_numeric_dtype(dtype):
        try:
            return column, pd.to_numeric(raw)
        except ValueError as err:
            raise ValueError(f"group type {spec!r}: {column} is numeric, {raw!r} is not a number") from err
    return column, raw


def condition_masks(metadata: pd.DataFrame, conditions: list[tuple[str, object]]) -> np.ndarray:
    """``[T, N]`` bool: image n satisfies condition t (missing values never do)."""
    return np.stack([(metadata[column] == value).fillna(False).to_numpy(dtype=bool) for column, value in conditions])


def value_groups(
    metadata: pd.DataFrame,
    group_types: list[str],
    n_groups: int,
    group_size: int,
    seed: int,
    strategy: str,
    split: str = "heldout",
    exclusive: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_groups`` groups per group type, every member satisfying it: ``[T * n_groups, B]``.

    Args:
        group_types: conditions ``"<column>=<value>"`` (see :func:`parse_condition`).
        exclusive: leave out images that satisfy more than one of the group types, so that
            contrast groups (Black_Hair=1 vs Blond_Hair=1) do not overlap.

    Returns:
        The groups, and their table with ``attribute`` and ``value`` columns.

    Raises:
        ValueError: an unknown attribute, or a group type with fewer images than ``group_size``
            (naming every group type's count).
    """
    if not group_types:
        raise ValueError(f"groups.{strategy}: list at least one group type, e.g. ['Black_Hair=1', 'Blond_Hair=1']")
    conditions = [parse_condition(spec, metadata) for spec in group_types]
    masks = condition_masks(metadata, conditions) & (metadata["split"] == split).to_numpy()
    if exclusive:
        masks &= masks.sum(axis=0) == 1
    counts = dict(zip(map(str, group_types), masks.sum(axis=1).tolist()))
    if min(counts.values()) < group_size:
        raise ValueError(
            f"groups.{strategy}: too few {split} images to fill a group of {group_size}: {counts}"
            f"{' (images in several group types left out: exclusive=true)' if exclusive else ''}; "
            f"lower groups.{strategy}.group_size or use more data"
        )
    rng = np.random.default_rng(seed)
    groups = np.concatenate([sample_groups(np.flatnonzero(mask), n_groups, group_size, rng) for mask in masks])
    table = group_table(
        len(groups),
        strategy,
        np.repeat(list(map(str, group_types)), n_groups).tolist(),
        attribute=pd.Series(np.repeat([column for column, _ in conditions], n_groups), dtype="string"),
        value=pd.Series(np.repeat([str(value) for _, value in conditions], n_groups), dtype="string"),
    )
    return groups, table


def attribute_groups(
    metadata: pd.DataFrame,
    group_types: list[str],
    n_groups: int,
    group_size: int,
    seed: int,
    exclusive: bool = True,
    n_random_groups: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out groups sharing an attribute (CelebA: Black_Hair=1 vs Blond_Hair=1; Male=1 vs Male=0).

    ``n_random_groups`` random held-out groups are appended (``group_type`` ``random``) as the
    third class of the paper's SVM experiment. Returns ``[n_types * n_groups + n_random, B]``.
    """
    groups, table = value_groups(metadata, group_types, n_groups, group_size, seed, "attribute", exclusive=exclusive)
    if n_random_groups:
        extra = random_groups(split_indices(metadata, "heldout"), n_random_groups, group_size, seed + 1)
        groups = np.concatenate([groups, extra])
        table = pd.concat([table, group_table(n_random_groups, "random", "random")], ignore_index=True)
        table["group_id"] = np.arange(len(table), dtype=np.int64)
    return groups, table


def class_groups(
    metadata: pd.DataFrame, n_groups: int, group_size: int, seed: int, column: str = "label"
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_groups`` held-out groups per class of ``column`` (labels -1 and missing left out)."""
    if column not in metadata.columns:
        raise ValueError(f"groups.class.column={column!r} is not a metadata column; columns: {list(metadata.columns)}")
    heldout = metadata.loc[metadata["split"] == "heldout", column].dropna()
    classes = sorted(value for value in heldout.unique() if str(value) != "-1")
    if not classes:
        raise ValueError(f"class groups need labelled images: held-out {column!r} has no value other than -1")
    return value_groups(metadata, [f"{column}={value}" for value in classes], n_groups, group_size, seed, "class")


# --- domain groups (domain alignment, SPEC 6 §4.2) --------------------------------------------


def domain_pools(metadata: pd.DataFrame, domains: list[str] | None, split: str) -> dict[str, np.ndarray]:
    """Indices of each of the two domains in ``split``: ``{domain: [n_d]}`` (default: first two seen)."""
    if "domain" not in metadata.columns:
        raise ValueError("domain groups need a 'domain' metadata column: ingest with data.source=mixed")
    present = list(pd.unique(metadata["domain"].dropna()))
    domains = present[:2] if not domains else list(domains)
    unknown = [domain for domain in domains if domain not in present]
    if len(domains) != 2 or unknown:
        raise ValueError(f"groups.domain.domains must name two domains of {present}, got {domains}")
    in_split = (metadata["split"] == split).to_numpy()
    return {domain: np.flatnonzero((metadata["domain"] == domain).to_numpy() & in_split) for domain in domains}


def domain_groups(
    metadata: pd.DataFrame,
    n_groups: int,
    group_size: int,
    seed: int,
    p: float = 0.5,
    domains: list[str] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out groups ``[3 * n_groups, B]``: single-domain groups of A, of B, then mixed groups.

    A mixed group takes each member from A with probability ``p``. The table has ``domain``
    (A, B or ``mixed``), ``p`` and ``fraction_a`` (the share of members from A).
    """
    pools = domain_pools(metadata, domains, "heldout")
    (name_a, pool_a), (name_b, pool_b) = pools.items()
    rng = np.random.default_rng(seed)
    single_a = sample_groups(pool_a, n_groups, group_size, rng, f"held-out images of domain {name_a!r}")
    single_b = sample_groups(pool_b, n_groups, group_size, rng, f"held-out images of domain {name_b!r}")
    mixed = mix_groups(pool_a, pool_b, n_groups, group_size, p, rng)
    groups = np.concatenate([single_a, single_b, mixed])
    types = np.repeat([name_a, name_b, "mixed"], n_groups).tolist()
    return groups, group_table(
        len(groups),
        "domain",
        types,
        domain=pd.Series(types, dtype="string"),
        p=np.repeat([1.0, 0.0, p], n_groups),
        fraction_a=np.isin(groups, pool_a).mean(axis=1),
    )


def domain_group_plan(
    metadata: pd.DataFrame,
    group_size: int,
    epochs: int,
    seed: int,
    p: float = 0.5,
    domains: list[str] | None = None,
    n_groups: int | None = None,
) -> np.ndarray:
    """Training plan ``[epochs, n_groups, B]`` of mixed groups of the two domains' training images.

    ``n_groups`` per epoch defaults to (training images of both domains) // B, about one pass.
    """
    pools = domain_pools(metadata, domains, "train")
    pool_a, pool_b = pools.values()
    n_groups = n_groups or (len(pool_a) + len(pool_b)) // group_size
    rng = np.random.default_rng(seed)
    return mix_groups(pool_a, pool_b, epochs * n_groups, group_size, p, rng).reshape(epochs, n_groups, group_size)
