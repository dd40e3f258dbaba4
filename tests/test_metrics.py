"""Quality metrics on cases with known answers, and the shipped evaluator."""

import math
import re

import numpy as np
import pytest

from gan_mnist import metrics
from gan_mnist.data import DEBIAN_FASHION_MNIST
from gan_mnist.evaluator import WEIGHTS, Evaluator, build_classifier, format_table


def test_identical_sets_have_distance_zero():
    features = np.random.default_rng(0).normal(size=(500, 8))
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_shifted_and_scaled_gaussians_give_the_analytic_distance():
    # N(0, diag(s1)) vs N(m, diag(s2)): d = |m|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu_b = np.array([1.0, -2.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    expected = mu_b.dot(mu_b) + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    got = metrics.frechet_distance_from_moments(np.zeros(3), np.diag(s1), mu_b, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)
    # The same from samples, within sampling error.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200_000, 3)) * np.sqrt(s1)
    b = rng.normal(size=(200_000, 3)) * np.sqrt(s2) + mu_b
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_singular_covariances_stay_finite_and_exact():
    rng = np.random.default_rng(2)
    a = np.zeros((300, 4))
    a[:, :2] = rng.normal(size=(300, 2))  # two dead features, as after a ReLU
    value = metrics.frechet_distance(a, a + np.array([0, 0, 0, 3.0]))
    assert value == pytest.approx(9.0, rel=1e-6)


def one_hot(classes, confidence=0.99):
    p = np.full((len(classes), 10), (1 - confidence) / 9)
    p[np.arange(len(classes)), classes] = confidence
    return p


def test_a_single_digit_covers_one_mode_and_scores_one():
    probabilities = one_hot(np.full(100, 7))
    coverage = metrics.mode_coverage(probabilities)
    assert coverage["digits_covered"] == 1 and coverage["histogram"][7] == 100
    assert coverage["kl_from_uniform"] == pytest.approx(math.log(10))
    assert metrics.classifier_score(probabilities) == pytest.approx(1.0)


def test_balanced_confident_digits_cover_everything_and_score_near_ten():
    probabilities = one_hot(np.repeat(np.arange(10), 50), confidence=0.999)
    coverage = metrics.mode_coverage(probabilities)
    assert coverage["digits_covered"] == 10 and coverage["kl_from_uniform"] == pytest.approx(0)
    assert 9.5 < metrics.classifier_score(probabilities) <= 10
    unsure = metrics.mode_coverage(np.full((20, 10), 0.1))
    assert unsure["confident_fraction"] == 0 and unsure["digits_covered"] == 0
    assert unsure["kl_from_uniform"] is None  # no histogram: not "balanced" (KL 0)


def test_precision_and_recall_see_realism_and_variety_apart():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 2))
    assert metrics.precision_recall(real, rng.normal(size=(600, 2))) > (0.9, 0.9)
    # Collapsed onto one corner of the real data: realistic (precision) but not varied.
    collapsed = rng.normal(size=(600, 2)) * 0.1 + np.array([1.0, 1.0])
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.3
    # Far away from the real data: neither.
    assert metrics.precision_recall(real, rng.normal(size=(600, 2)) + 10) == (0.0, 0.0)


def test_shipped_weights_load_into_the_classifier():
    assert WEIGHTS.exists(), "the package must ship the evaluator's weights"
    evaluator = Evaluator.load()
    assert evaluator.model.count_params() == build_classifier().count_params()
    features, probabilities = evaluator.predict(np.zeros((3, 28, 28), np.uint8))
    assert features.shape == (3, 128) and probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_evaluator_gives_keras_predict_s_numbers_from_one_graph_for_any_count():
    # Keras' predict traced again for each new last-batch size and, a few in, warned of
    # retracing into a notebook's cell; the evaluator's own call is traced once.
    evaluator = Evaluator.load()
    model = evaluator.model
    images = np.random.default_rng(0).integers(0, 256, (1003, 28, 28), dtype=np.uint8)
    for n in (1003, 7, 0, 250):
        features, probabilities = evaluator.predict(images[:n])
        assert features.shape == (n, 128) and probabilities.shape == (n, 10)
        if n:
            logits = model.predict(images[:n].astype(np.float32), batch_size=1000, verbose=0)
            expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    assert evaluator._features_and_logits.experimental_get_tracing_count() == 1
    # Each evaluation loads "the" evaluator: the same one, traced once, in the process.
    assert Evaluator.load() is evaluator


def test_a_weights_file_rewritten_in_place_is_loaded_again_even_with_its_old_mtime(tmp_path):
    import os

    path, other = tmp_path / "classifier.weights.h5", tmp_path / "other.weights.h5"
    for weights in (path, other):
        build_classifier().save_weights(weights)  # two untrained ones
    assert path.stat().st_size == other.stat().st_size
    first = Evaluator.load(path)
    stat = path.stat()
    os.replace(other, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p would leave it
    images = np.zeros((4, 28, 28), np.uint8)
    reloaded = Evaluator.load(path)
    assert reloaded is not first
    assert not np.allclose(reloaded.predict(images)[0], first.predict(images)[0])
    assert Evaluator.load(path) is reloaded


def test_missing_weights_say_how_to_make_them(tmp_path):
    from gan_mnist.errors import UserError

    with pytest.raises(UserError, match="gan-mnist train-evaluator"):
        Evaluator.load(tmp_path / "none.weights.h5")


def test_table_shows_both_columns():
    row = {
        "frechet_distance": 1.5,
        "classifier_score": 9.0,
        "digits_covered": 10,
        "kl_from_uniform": 0.01,
        "confident_fraction": 0.9,
        "precision": 0.8,
        "recall": 0.7,
        "histogram": [1] * 10,
    }
    table = format_table({"generated": row, "real_data_ceiling": {**row, "digits_covered": 9}})
    unsure = format_table({"generated": {**row, "kl_from_uniform": None}, "real_data_ceiling": row})
    assert re.search(r"KL\(class histogram \|\| uniform\).* n/a +0\.010", unsure)
    assert "Fréchet distance (classifier features)" in table
    assert "classes covered" in table and " 10 " in table and "  9" in table


def test_shipped_evaluator_reaches_99_percent_on_real_mnist(monkeypatch, real_data_cache):
    from gan_mnist.data import load_mnist

    monkeypatch.setenv("GAN_MNIST_CACHE", str(real_data_cache))
    mnist = load_mnist()
    assert Evaluator.load().accuracy(mnist.x_test, mnist.y_test) >= 0.99


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_shipped_fashion_evaluator_reaches_90_percent_on_real_fashion_mnist():
    from gan_mnist.data import load_dataset

    fashion = load_dataset("fashion_mnist")  # offline: Debian's files, checked by SHA-256
    assert fashion.source == str(DEBIAN_FASHION_MNIST)
    evaluator = Evaluator.load(dataset="fashion_mnist")
    assert evaluator.accuracy(fashion.x_test, fashion.y_test) >= 0.90


def test_damaged_evaluator_weights_are_a_clear_error(tmp_path):
    from gan_mnist.errors import UserError

    damaged = tmp_path / "mnist_classifier.weights.h5"
    damaged.write_bytes(WEIGHTS.read_bytes()[:5000])
    with pytest.raises(UserError, match="damaged.*train-evaluator"):
        Evaluator.load(damaged)


def test_a_small_evaluation_is_measured_against_as_many_fixed_test_images():
    from gan_mnist.data import ImageData
    from gan_mnist.evaluator import reference_images

    x_test = np.arange(50 * 28 * 28, dtype=np.uint32).reshape(50, 28, 28)
    data = ImageData(x_test[:0], np.zeros(0), x_test, np.zeros(50), "test", "mnist")
    chosen = reference_images(data, 20)
    assert len(chosen) == 20 and len({int(img[0, 0]) for img in chosen}) == 20
    np.testing.assert_array_equal(chosen, reference_images(data, 20))  # the same every time
    assert reference_images(data, 50) is x_test and reference_images(data, 80) is x_test
