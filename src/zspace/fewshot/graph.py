"""k-nearest-neighbour graphs over training features and label propagation on them.

The graph holds training images only (labelled and unlabelled); test images are classified
afterwards by a vote of their nearest training nodes, so they never shape the graph.
"""

from __future__ import annotations

import warnings

import torch


def nearest_neighbours(
    queries: torch.Tensor,
    base: torch.Tensor,
    k: int,
    exclude_self: bool = False,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared Euclidean distances (Q, k) and indices (Q, k) of each query's k nearest rows
    of `base`, nearest first. With `exclude_self`, queries are base itself and row i skips i."""
    base_norms = (base * base).sum(1)
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        # One (chunk, N) buffer, updated in place: the naive expression allocates four.
        squared = torch.addmm(base_norms, block, base.T, alpha=-2.0)
        squared += (block * block).sum(1, keepdim=True)
        if exclude_self:
            rows = torch.arange(len(block), device=base.device)
            squared[rows, rows + start] = float("inf")
        values, found = squared.topk(k, dim=1, largest=False)
        distances.append(values.clamp_min_(0.0))
        indices.append(found)
    return torch.cat(distances), torch.cat(indices)


def affinity_matrix(distances: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Symmetric sparse (CSR) affinities from a kNN list.

    Weights exp(-d^2 / d_k^2) with d_k each node's distance to its k-th neighbour (a
    self-tuning bandwidth, so dense and sparse regions are treated alike); W = A + A^T.
    """
    count, k = indices.shape
    scale = distances[:, -1:].clamp_min(1e-12)
    weights = torch.exp(-distances / scale)
    rows = torch.arange(count, device=indices.device).repeat_interleave(k)
    coo = torch.sparse_coo_tensor(
        torch.stack([rows, indices.reshape(-1)]),
        weights.reshape(-1),
        (count, count),
        check_invariants=False,  # indices come from topk: in range by construction
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return (coo + coo.t()).coalesce().to_sparse_csr()


def one_hot_seeds(count: int, labelled: torch.Tensor, labels: torch.Tensor, classes: int):
    seeds = torch.zeros(count, classes, device=labels.device)
    seeds[labelled, labels] = 1.0
    return seeds


def label_spreading(
    affinity: torch.Tensor,
    labelled: torch.Tensor,
    labels: torch.Tensor,
    classes: int = 10,
    alpha: float = 0.99,
    iterations: int = 60,
) -> torch.Tensor:
    """Zhou et al. (2004): F <- alpha S F + (1 - alpha) Y with S = D^-1/2 W D^-1/2.

    Returns class scores (N, classes), each column scaled to sum to one so that classes with
    large, dense clusters do not swallow the others (class mass normalisation)."""
    inverse_sqrt_degree = _degrees(affinity).rsqrt().unsqueeze(1)
    seeds = one_hot_seeds(affinity.shape[0], labelled, labels, classes)
    scores = seeds.clone()
    for _ in range(iterations):
        scores = alpha * inverse_sqrt_degree * (affinity @ (inverse_sqrt_degree * scores))
        scores += (1 - alpha) * seeds
    return scores / scores.sum(0, keepdim=True).clamp_min(1e-12)


def poisson_learning(
    affinity: torch.Tensor,
    labelled: torch.Tensor,
    labels: torch.Tensor,
    classes: int = 10,
    iterations: int = 200,
) -> torch.Tensor:
    """Poisson learning (Calder et al., ICML 2020): solve L u = sum_j (y_j - mean y) delta_j by
    Jacobi iterations. Unlike Laplace learning it stays informative at a few labels per class.
    Returns class scores (N, classes); argmax gives the label."""
    degree = _degrees(affinity).unsqueeze(1)
    seeds = one_hot_seeds(affinity.shape[0], labelled, labels, classes)
    sources = torch.zeros_like(seeds)
    sources[labelled] = seeds[labelled] - seeds[labelled].mean(0, keepdim=True)
    scores = torch.zeros_like(seeds)
    for _ in range(iterations):
        scores = scores + (sources - (degree * scores - affinity @ scores)) / degree
    return scores


def _degrees(affinity: torch.Tensor) -> torch.Tensor:
    ones = torch.ones(affinity.shape[0], 1, device=affinity.values().device)
    return (affinity @ ones).squeeze(1).clamp_min(1e-12)


def vote_from_neighbours(
    distances: torch.Tensor, indices: torch.Tensor, base_scores: torch.Tensor
) -> torch.Tensor:
    """Predicted labels of queries whose k nearest base rows (the training nodes) are
    (distances, indices) from `nearest_neighbours`: the class with the largest
    distance-weighted count among those nodes' labels (argmax of `base_scores`)."""
    weights = torch.exp(-distances / distances[:, -1:].clamp_min(1e-12))
    base_labels = base_scores.argmax(1)
    votes = torch.zeros(len(indices), base_scores.shape[1], device=indices.device)
    votes.scatter_add_(1, base_labels[indices], weights)
    return votes.argmax(1)
