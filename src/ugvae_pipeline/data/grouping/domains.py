"""Domain groups (domain alignment, docs/model.md §7) from the two domains of a mixed source:
single-domain and mixed evaluation groups, and training plans of mixed groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ugvae_pipeline.data.grouping.common import group_table
from ugvae_pipeline.data.grouping.random import sample_groups


def mix_groups(
    pool_a: np.ndarray,
    pool_b: np.ndarray,
    n_groups: int,
    group_size: int,
    p: float,
    rng: np.random.Generator,
    parameter: str | None = None,
    names: tuple[str, str] = ("images of domain A", "images of domain B"),
) -> np.ndarray:
    """``[n_groups, B]`` groups whose every member comes from ``pool_a`` with probability ``p``.

    The number from A in a group is Binomial(B, p); members are distinct (pools are disjoint).
    Each pool must fill a group: an error names ``parameter``, the parameter that set B, and
    ``names`` the pools.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"groups.domain.p must be a probability in [0, 1], got {p!r}")
    from_a = sample_groups(pool_a, n_groups, group_size, rng, names[0], parameter)
    from_b = sample_groups(pool_b, n_groups, group_size, rng, names[1], parameter)
    return np.where(rng.random((n_groups, group_size)) < p, from_a, from_b)


def domain_pools(
    metadata: pd.DataFrame, domains: list[str] | None, split: str
) -> dict[str, np.ndarray]:
    """Indices of each of the two domains in ``split``: ``{domain: [n_d]}`` (default: first two seen)."""
    if "domain" not in metadata.columns:
        raise ValueError(
            "domain groups need a 'domain' metadata column: ingest with data.source=mixed"
        )
    present = list(pd.unique(metadata["domain"].dropna()))
    domains = present[:2] if not domains else list(domains)
    unknown = [domain for domain in domains if domain not in present]
    if len(domains) != 2 or unknown:
        raise ValueError(f"groups.domain.domains must name two domains of {present}, got {domains}")
    in_split = (metadata["split"] == split).to_numpy()
    return {
        domain: np.flatnonzero((metadata["domain"] == domain).to_numpy() & in_split)
        for domain in domains
    }


def domain_groups(
    metadata: pd.DataFrame,
    n_groups: int,
    group_size: int,
    seed: int,
    p: float = 0.5,
    domains: list[str] | None = None,
    split: str = "test",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Groups of ``split`` images ``[3 * n_groups, B]``: single-domain groups of A, of B, then mixed groups.

    A mixed group takes each member from A with probability ``p``. The table has ``domain``
    (A, B or ``mixed``), ``p`` and ``fraction_a`` (the share of members from A).
    """
    pools = domain_pools(metadata, domains, split)
    (name_a, pool_a), (name_b, pool_b) = pools.items()
    rng = np.random.default_rng(seed)
    names = (f"{split} images of domain {name_a!r}", f"{split} images of domain {name_b!r}")
    parameter = "groups.domain.group_size"
    single_a = sample_groups(pool_a, n_groups, group_size, rng, names[0], parameter)
    single_b = sample_groups(pool_b, n_groups, group_size, rng, names[1], parameter)
    mixed = mix_groups(pool_a, pool_b, n_groups, group_size, p, rng, parameter, names)
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
    (name_a, pool_a), (name_b, pool_b) = pools.items()
    n_groups = n_groups or (len(pool_a) + len(pool_b)) // group_size
    rng = np.random.default_rng(seed)
    names = (f"training images of domain {name_a!r}", f"training images of domain {name_b!r}")
    return mix_groups(
        pool_a, pool_b, epochs * n_groups, group_size, p, rng, "train.group_size", names
    ).reshape(epochs, n_groups, group_size)
