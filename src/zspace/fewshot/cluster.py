"""Zero labels: spectral clustering of the kNN graph of the training images, its evaluation
(accuracy under the best one-to-one matching of clusters to digits, and NMI), and
cluster-then-label, which names the clusters with one label per class.

Only training images are clustered; a test image joins the cluster of the vote of its nearest
training nodes, so test images never shape the clusters. Labels are used to evaluate the
clusters, never to make them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import LinearOperator, eigsh

from zspace.errors import ZspaceError
from zspace.fewshot.context import StudyContext
from zspace.fewshot.graph import (
    affinity_matrix,
    nearest_neighbours,
    poisson_learning,
    vote_from_neighbours,
)

# Measured on the 60,000 training images (labels used to evaluate only): HOG features beat
# deskewed pixels and the autoencoder's codes by far (98.1% matched against 83% and 69%);
# k = 15 beats the context's k = 10 graph (97.4%); more eigenvectors than clusters make
# k-means unstable (84-97%).
CLUSTER_FEATURES = "hog-pca"
CLUSTER_NEIGHBOURS = 15
REGULARISATION = 0.01  # of the mean degree, spread over all pairs (see spectral_embedding)
RESTARTS = 10  # k-means runs from different k-means++ seeds; the lowest inertia is kept
KMEANS_ITERATIONS = 100  # Lloyd iterations at most; a run stops once no point moves


def spectral_embedding(affinity: torch.Tensor, dims: int, seed: int = 0) -> torch.Tensor:
    """Rows of the top `dims` eigenvectors of the normalised affinity D^-1/2 W D^-1/2 of a sparse
    CSR W, each row scaled to unit length (Ng, Jordan and Weiss 2001); float (N, dims) on W's
    device.

    W is regularised first: every pair of nodes gets REGULARISATION times the mean degree over
    N (Amini et al. 2013). On a graph of separate components the top eigenvalue 1 repeats, and
    the Lanczos method (ARPACK, scipy's eigsh) can miss its copies; the regularised graph is
    connected. ARPACK on the CPU: 5 s for 10 eigenvectors of 60,000 nodes; torch.lobpcg: 140 s."""
    count = affinity.shape[0]
    if dims >= count:
        raise ZspaceError(f"{dims} eigenvectors need more than {count} images")
    weights = csr_matrix(
        (
            affinity.values().detach().cpu().double().numpy(),
            affinity.col_indices().cpu().numpy(),
            affinity.crow_indices().cpu().numpy(),
        ),
        shape=(count, count),
    )
    degrees = weights.sum(1).A1
    uniform = REGULARISATION * degrees.mean() / count  # the added weight of every pair
    inverse_sqrt_degree = 1.0 / np.sqrt(degrees + uniform * count)

    def normalised_times(vector: np.ndarray) -> np.ndarray:
        scaled = inverse_sqrt_degree * vector
        return inverse_sqrt_degree * (weights @ scaled + uniform * scaled.sum())

    operator = LinearOperator((count, count), matvec=normalised_times, dtype=np.float64)
    # A fixed start vector: ARPACK otherwise starts from a random one, and reruns would differ.
    start = np.random.default_rng(seed).standard_normal(count)
    _, vectors = eigsh(operator, k=dims, which="LA", v0=start)
    embedding = torch.from_numpy(vectors).float()
    embedding /= embedding.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return embedding.to(affinity.values().device)


def kmeans_plus_plus(points: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` seed centres from (N, D) points, each next one drawn with probability
    proportional to its squared distance to the nearest centre so far (Arthur and Vassilvitskii)."""
    first = torch.randint(len(points), (1,), generator=generator).item()
    centres = [points[first]]
    nearest = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, count):
        weights = nearest.clamp_min(0).cpu().double()
        if weights.sum() <= 0:  # every point sits on a centre already
            weights = torch.ones_like(weights)
        chosen = torch.multinomial(weights, 1, generator=generator).item()
        centres.append(points[chosen])
        nearest = torch.minimum(nearest, ((points - points[chosen]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(
    points: torch.Tensor,
    clusters: int,
    restarts: int = RESTARTS,
    seed: int = 0,
    iterations: int = KMEANS_ITERATIONS,
) -> tuple[torch.Tensor, float]:
    """Lloyd's k-means from `restarts` k-means++ seedings; (assignments (N,), inertia) of the
    run with the lowest inertia (sum of squared distances to the centres)."""
    if len(points) < clusters:
        raise ZspaceError(f"{len(points)} images are too few for {clusters} clusters")
    generator = torch.Generator().manual_seed(seed)
    norms = (points * points).sum(1, keepdim=True)  # (N, 1)
    best_assignment, best_inertia = None, float("inf")
    for _ in range(restarts):
        centres = kmeans_plus_plus(points, clusters, generator)
        assignment = None
        for _ in range(iterations):
            squared = torch.addmm(norms, points, centres.T, alpha=-2.0) + (centres**2).sum(1)
            distances, new_assignment = squared.min(1)  # (N,), (N,)
            if assignment is not None and torch.equal(new_assignment, assignment):
                break
            assignment = new_assignment
            sizes = torch.bincount(assignment, minlength=clusters).unsqueeze(1)
            sums = torch.zeros_like(centres).index_add_(0, assignment, points)
            # An emptied cluster keeps its centre rather than dividing by zero.
            centres = torch.where(sizes > 0, sums / sizes.clamp_min(1), centres)
        inertia = distances.clamp_min(0).sum().item()
        if inertia < best_inertia:
            best_assignment, best_inertia = new_assignment, inertia
    return best_assignment, best_inertia


def spectral_clusters(
    affinity: torch.Tensor,
    clusters: int = 10,
    eigenvectors: int | None = None,
    restarts: int = RESTARTS,
    seed: int = 0,
) -> torch.Tensor:
    """Cluster index (N,) of each node of a sparse CSR affinity graph: k-means on the
    row-normalised embedding by `eigenvectors` (default: as many as clusters) eigenvectors."""
    embedding = spectral_embedding(affinity, eigenvectors or clusters, seed)
    return kmeans(embedding, clusters, restarts, seed)[0]


def clustering_graph(context: StudyContext, feature_name: str) -> torch.Tensor:
    """Sparse affinities of the CLUSTER_NEIGHBOURS-nearest-neighbour graph over the training
    features (denser than the context's propagation graph); built once per context."""

    def build():
        train = context.features(feature_name).train
        return affinity_matrix(
            *nearest_neighbours(train, train, CLUSTER_NEIGHBOURS, exclude_self=True)
        )

    return context.cached(f"cluster-graph:{feature_name}", build)


def cluster_training_images(
    context: StudyContext, feature_name: str, clusters: int = 10, seed: int = 0
) -> torch.Tensor:
    """Spectral clusters (N_train,) of the kNN graph over the training features (no labels);
    built once per context."""
    return context.cached(
        f"clusters:{feature_name}:{clusters}:{seed}",
        lambda: spectral_clusters(clustering_graph(context, feature_name), clusters, seed=seed),
    )


def assign_test(
    context: StudyContext, feature_name: str, train_assignments: torch.Tensor
) -> torch.Tensor:
    """Each test image's cluster (N_test,): the distance-weighted vote of its nearest training
    nodes' clusters."""
    clusters = int(train_assignments.max().item()) + 1
    distances, indices = context.test_neighbours(feature_name)
    one_hot = torch.nn.functional.one_hot(train_assignments.to(indices.device), clusters)
    return vote_from_neighbours(distances, indices, one_hot.float())


def contingency(first: torch.Tensor, second: torch.Tensor) -> np.ndarray:
    """Counts (A, B) of items with value a in `first` and b in `second` (integer labellings)."""
    first = torch.as_tensor(first).cpu().long()
    second = torch.as_tensor(second).cpu().long()
    if first.shape != second.shape or first.dim() != 1:
        raise ZspaceError(
            f"two labellings of the same items needed, got {first.shape}, {second.shape}"
        )
    width = int(second.max().item()) + 1 if len(second) else 1
    rows = int(first.max().item()) + 1 if len(first) else 1
    return (
        torch.bincount(first * width + second, minlength=rows * width).reshape(rows, width).numpy()
    )


def matched_accuracy(
    assignments: torch.Tensor, labels: torch.Tensor
) -> tuple[float, dict[int, int]]:
    """Accuracy under the best one-to-one matching of clusters to labels (Hungarian), and that
    matching {cluster: label}; with more clusters than labels the unmatched ones count as wrong."""
    counts = contingency(assignments, labels)
    rows, columns = linear_sum_assignment(counts, maximize=True)
    accuracy = counts[rows, columns].sum() / max(1, counts.sum())
    return float(accuracy), {int(r): int(c) for r, c in zip(rows, columns)}


def accuracy_under(mapping: dict[int, int], assignments: torch.Tensor, labels: torch.Tensor):
    """Accuracy when each cluster predicts its label in `mapping` (unmapped clusters: wrong)."""
    lookup = torch.full((int(assignments.max().item()) + 1,), -1, dtype=torch.long)
    for cluster, label in mapping.items():
        if cluster < len(lookup):
            lookup[cluster] = label
    predicted = lookup[assignments.cpu().long()]
    return (predicted == labels.cpu().long()).double().mean().item()


def normalized_mutual_information(first: torch.Tensor, second: torch.Tensor) -> float:
    """I(A; B) / ((H(A) + H(B)) / 2), in [0, 1]: 1 for labellings equal up to renaming, near 0 for
    independent ones (sklearn's default, arithmetic normalisation, without its chance correction)."""
    joint = contingency(first, second).astype(np.float64)
    total = joint.sum()
    if total == 0:
        return 1.0
    joint /= total
    first_marginal, second_marginal = joint.sum(1), joint.sum(0)
    if (first_marginal > 0).sum() == (second_marginal > 0).sum() == 1:
        return 1.0  # one group each: identical labellings (sklearn's convention)
    present = joint > 0
    outer = np.outer(first_marginal, second_marginal)
    information = float((joint[present] * np.log(joint[present] / outer[present])).sum())
    entropies = [-(p[p > 0] * np.log(p[p > 0])).sum() for p in (first_marginal, second_marginal)]
    return float(max(0.0, information) / max(np.mean(entropies), 1e-12))


def name_clusters(
    assignments: torch.Tensor,
    labelled: torch.Tensor,
    labels: torch.Tensor,
    tie_scores: torch.Tensor,
    classes: int = 10,
) -> torch.Tensor:
    """The class (K,) of each of K clusters: the one-to-one matching of clusters to classes with
    the most labelled images agreeing; among equal ones, the highest sum of `tie_scores` (K, C),
    which decides for clusters that hold no labelled image. Clusters beyond the classes take
    their best tie score."""
    clusters = tie_scores.shape[0]
    counts = np.zeros((clusters, classes))
    np.add.at(counts, (assignments[labelled].cpu().numpy(), labels.cpu().numpy()), 1)
    scores = tie_scores.detach().cpu().double().numpy()
    spread = scores.max() - scores.min()
    # Ties in [0, 1): summed over at most K pairs they stay below one more agreeing label, K + 1.
    ties = 0.99 * (scores - scores.min()) / (spread if spread > 0 else 1.0)
    rows, columns = linear_sum_assignment(counts * (clusters + 1) + ties, maximize=True)
    names = torch.from_numpy(scores.argmax(1))
    names[torch.from_numpy(rows)] = torch.from_numpy(columns)
    return names


def cluster_node_labels(
    context: StudyContext, labelled: torch.Tensor, classes: int = 10
) -> torch.Tensor:
    """The class (N_train,) of every training node from a few labelled training images
    (1 per class suffices): cluster the training graph into `classes` clusters without
    labels, name each cluster with a class (`name_clusters`, ties broken by the cluster's mean
    Poisson-learning scores on the same graph), and give every node its cluster's class."""
    affinity = clustering_graph(context, CLUSTER_FEATURES)
    device = affinity.values().device
    assignments = cluster_training_images(context, CLUSTER_FEATURES, classes, context.seed)
    assignments = assignments.to(device)
    labelled = labelled.to(device)
    labels = context.train_labels.to(device)[labelled]
    poisson = poisson_learning(affinity, labelled, labels, classes)  # (N, classes)
    members = torch.bincount(assignments, minlength=classes).clamp_min(1).unsqueeze(1)
    mean_scores = torch.zeros(classes, classes, device=device).index_add_(0, assignments, poisson)
    names = name_clusters(assignments, labelled, labels, mean_scores / members, classes)
    return names.to(device)[assignments]


def cluster_then_label(
    context: StudyContext, labelled: torch.Tensor, classes: int = 10
) -> torch.Tensor:
    """Test labels (N_test,): every training node labelled by `cluster_node_labels`, each
    test image by the vote of its nearest training nodes."""
    train_classes = torch.nn.functional.one_hot(
        cluster_node_labels(context, labelled, classes), classes
    )
    return vote_from_neighbours(*context.test_neighbours(CLUSTER_FEATURES), train_classes.float())
