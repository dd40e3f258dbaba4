"""Sample-quality metrics computed on an MNIST classifier's features and predictions.

ImageNet-Inception features mean little on 28x28 digits (and Inception weights
cannot be downloaded everywhere), so, like TF-GAN's MNIST example, these use a
small MNIST classifier (`gan_mnist.evaluator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENT = 0.9  # a sample "counts" for mode coverage when the classifier is this sure
# Precision and recall use each point's k-th nearest neighbour, so a measurement needs
# at least k + 1 samples.
NEIGHBOURS = 3


@dataclass(frozen=True)
class Metric:
    """One metric of `Evaluator.score`: its key, its line in `evaluate`'s table, its
    format, and its words in one-line summaries (None: only in the table)."""

    key: str
    label: str
    fmt: str
    name: str | None = None
    short: str | None = None


METRICS = (
    Metric(
        "frechet_distance",
        "Fréchet distance (classifier features), lower is better",
        ".2f",
        "Fréchet distance",
        "FD",
    ),
    Metric(
        "classifier_score",
        "classifier score (Inception Score analogue, max = classes)",
        ".2f",
        "classifier score",
        "score",
    ),
    Metric(
        "digits_covered",
        "classes covered (confident samples)",
        "g",  # a count, also when history.csv gave it back as a float
        "classes covered",
        "classes",
    ),
    Metric("kl_from_uniform", "KL(class histogram || uniform), lower is better", ".3f"),
    Metric("confident_fraction", "share of samples classified with p >= 0.9", ".3f"),
    Metric("precision", f"precision (k-NN manifold, k={NEIGHBOURS})", ".3f"),
    Metric("recall", f"recall (k-NN manifold, k={NEIGHBOURS})", ".3f"),
)
# What training logs per evaluation (history.csv) and the benchmarks tabulate.
HEADLINE = ("frechet_distance", "classifier_score", "digits_covered", "precision", "recall")


def summary(scores: dict, words: str = "short", sep: str = "  ") -> str:
    """The summarised metrics of ``scores`` on one line: "FD 9.36  score 8.71  classes
    10" (``words="name"``: "Fréchet distance 9.36, ...", with ``sep=", "``)."""
    named = [m for m in METRICS if getattr(m, words)]
    return sep.join(f"{getattr(m, words)} {scores[m.key]:{m.fmt}}" for m in named)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    Args:
        features_a, features_b: (N, D) arrays, N > 1.
    """
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    return frechet_distance_from_moments(mu_a, cov_a, mu_b, cov_b)


def frechet_distance_from_moments(mu_a, cov_a, mu_b, cov_b) -> float:
    """The Fréchet distance of N(mu_a, cov_a) and N(mu_b, cov_b)."""
    diff = mu_a - mu_b
    value = (
        diff.dot(diff) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * _trace_sqrt_product(cov_a, cov_b)
    )
    return float(max(value, 0.0))


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """Tr((A B)^(1/2)) for symmetric positive semi-definite A and B.

    A B is not symmetric, and `scipy.linalg.sqrtm` of it warns and loses accuracy
    when A or B is singular (dead ReLU features make them so). The same trace is
    Tr((A^(1/2) B A^(1/2))^(1/2)), whose inner matrix is symmetric PSD: two `eigh`
    calls, with round-off negatives clipped to 0, are exact and stable.
    """
    from scipy import linalg  # here: the CLI's settings import this module's NEIGHBOURS

    eigenvalues, eigenvectors = linalg.eigh(cov_a)
    sqrt_a = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    inner = linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def classifier_score(probabilities: np.ndarray) -> float:
    """The Inception Score with an MNIST classifier: exp(E_x[KL(p(y|x) || p(y))]).

    1 when every sample gets the same prediction; 10 (the number of classes) when
    each is confidently one digit and all digits are equally common.
    """
    p = np.clip(probabilities, 1e-12, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p) - np.log(marginal))).sum(axis=1)
    return float(np.exp(kl.mean()))


def mode_coverage(probabilities: np.ndarray, min_share: float = 0.01) -> dict:
    """Which digits the confidently classified samples cover.

    Returns:
        {"histogram": count per digit (0..9) among samples with max probability >=
        CONFIDENT, "confident_fraction", "digits_covered": digits holding at least
        ``min_share`` of the confident samples, "kl_from_uniform": KL(histogram ||
        uniform), 0 for perfectly balanced digits, ln 10 = 2.30 for a single digit,
        None when no sample is confident (no histogram to compare)}.
    """
    confident = probabilities.max(axis=1) >= CONFIDENT
    classes = probabilities.argmax(axis=1)[confident]
    histogram = np.bincount(classes, minlength=probabilities.shape[1])
    total = max(int(histogram.sum()), 1)
    shares = histogram / total
    nonzero = shares[shares > 0]
    return {
        "histogram": histogram.tolist(),
        "confident_fraction": float(confident.mean()),
        "digits_covered": int((shares >= min_share).sum()) if histogram.sum() else 0,
        "kl_from_uniform": (
            float((nonzero * np.log(nonzero * len(shares))).sum()) if histogram.sum() else None
        ),
    }


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS, chunk: int = 2048
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in feature space.

    Each set's manifold is the union of balls around its points reaching their
    k-th nearest neighbour. Precision: share of fake points inside the real
    manifold (are samples realistic?). Recall: share of real points inside the
    fake manifold (is the variety covered?).
    """
    real_radii = _kth_neighbour_distance(real, k, chunk)
    fake_radii = _kth_neighbour_distance(fake, k, chunk)
    precision = _inside_manifold(fake, real, real_radii, chunk).mean()
    recall = _inside_manifold(real, fake, fake_radii, chunk).mean()
    return float(precision), float(recall)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, computed in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kth_neighbour_distance(points: np.ndarray, k: int, chunk: int) -> np.ndarray:
    radii = np.empty(len(points))
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start : start + chunk], points)
        # Index k, not k - 1: each point's nearest neighbour is itself at distance 0.
        radii[start : start + chunk] = np.sqrt(np.partition(d, k, axis=1)[:, k])
    return radii


def _inside_manifold(
    queries: np.ndarray, points: np.ndarray, radii: np.ndarray, chunk: int
) -> np.ndarray:
    inside = np.empty(len(queries), dtype=bool)
    for start in range(0, len(queries), chunk):
        d = np.sqrt(_squared_distances(queries[start : start + chunk], points))
        inside[start : start + chunk] = (d <= radii[None, :]).any(axis=1)
    return inside
