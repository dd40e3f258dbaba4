"""The classifiers that measure generated images, and the evaluation of a run.

One small CNN per data set (MNIST, Fashion-MNIST); a run is always measured by the
classifier of its own data set. The weights ship in the package
(``weights/DATASET_classifier.weights.h5``), so evaluating needs no training;
``gan-mnist train-evaluator [--dataset NAME]`` reproduces them.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from gan_mnist import metrics
from gan_mnist.config import EVALUATOR_EPOCHS
from gan_mnist.data import NUM_CLASSES, ImageData
from gan_mnist.errors import UserError
from gan_mnist.models.base import GanModels

WEIGHTS_DIR = Path(__file__).with_name("weights")
FEATURES = "features"
FEATURE_SIZE = 128  # units of the FEATURES layer


def weights_path(dataset: str = "mnist") -> Path:
    """Where the shipped classifier of ``dataset`` lives."""
    return WEIGHTS_DIR / f"{dataset}_classifier.weights.h5"


WEIGHTS = weights_path("mnist")


def build_classifier() -> keras.Model:
    """A small CNN: uint8 images (batch, 28, 28) -> 10 logits; its 128-d penultimate
    layer (named "features") is the feature space of the Fréchet distance.

    The same network for every data set: 99.30% test accuracy on MNIST after 4
    epochs, 91.7% on Fashion-MNIST after 8."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            layers.Rescaling(1 / 127.5, offset=-1.0),  # pixels -> [-1, 1], as the GAN's
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),  # (batch, 26, 26, 32)
            layers.Conv2D(32, 3, activation="relu"),  # (batch, 24, 24, 32)
            layers.MaxPooling2D(),  # (batch, 12, 12, 32)
            layers.Conv2D(64, 3, activation="relu"),  # (batch, 10, 10, 64)
            layers.Conv2D(64, 3, activation="relu"),  # (batch, 8, 8, 64)
            layers.MaxPooling2D(),  # (batch, 4, 4, 64)
            layers.Flatten(),
            layers.Dense(FEATURE_SIZE, activation="relu", name=FEATURES),  # (batch, 128)
            layers.Dropout(0.4),
            layers.Dense(NUM_CLASSES, name="logits"),
        ],
        name="mnist_classifier",
    )


def train_classifier(
    data: ImageData, epochs: int | None = None, seed: int = 0, verbose: int = 2
) -> tuple[keras.Model, float]:
    """Train the classifier on a data set's training images (for ``epochs``, by default
    `EVALUATOR_EPOCHS` of its data set).

    Returns:
        (model, accuracy on the 10,000 test images).
    """
    epochs = EVALUATOR_EPOCHS[data.dataset] if epochs is None else epochs
    keras.utils.set_random_seed(seed)
    model = build_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=128,
        epochs=epochs,
        verbose=verbose,
        validation_data=(data.x_test, data.y_test),
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=1000, verbose=0)
    return model, float(accuracy)


class Evaluator:
    """Features and class probabilities of images, and the metrics built on them."""

    def __init__(self, model: keras.Model):
        self.model = model
        both = keras.Model(model.inputs, [model.get_layer(FEATURES).output, model.outputs[0]])
        # One graph for any number of images: Keras' predict traces again for each new
        # last-batch size, and after a few it warns of retracing (into a notebook's cell).
        self._features_and_logits = tf.function(
            lambda images: both(images, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28], tf.float32)],
        )

    @classmethod
    def load(cls, path: Path | None = None, dataset: str = "mnist") -> Evaluator:
        """The shipped classifier of ``dataset`` (or the weights at ``path``), shared by
        every caller in the process while the file is unchanged: use it, do not train or
        modify its model."""
        path = Path(path) if path is not None else weights_path(dataset)
        retrain = f"`gan-mnist train-evaluator --dataset {dataset}`"
        if not path.exists():
            raise UserError(f"no evaluator weights at {path}. Train them with {retrain}.")
        # One evaluator per weights file as it is now, for the whole process: a new one
        # per evaluation (a notebook's exercises) would trace its call again each time,
        # and TensorFlow warns of retracing after a few.
        stat = path.stat()  # a rewrite or rename changes ctime, which no copy can set
        key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
        if key not in _LOADED:
            model = build_classifier()
            try:
                model.load_weights(path)
            except Exception as error:  # h5py and Keras raise many kinds for a damaged file
                raise UserError(
                    f"the evaluator weights {path} cannot be read ({str(error)[:160]}); the "
                    f"file is damaged. Reinstall the package or retrain them with {retrain}."
                ) from None
            _LOADED[key] = cls(model)
        return _LOADED[key]

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Args: images (N, 28, 28) uint8. Returns: features (N, 128), probabilities (N, 10)."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)  # also (N, 28, 28, 1)
        if not len(images):
            return np.zeros((0, FEATURE_SIZE), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        starts = range(0, len(images), batch_size)
        outputs = [self._features_and_logits(images[i : i + batch_size]) for i in starts]
        features = np.concatenate([pair[0].numpy() for pair in outputs])
        logits = np.concatenate([pair[1].numpy() for pair in outputs])
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return features, probabilities

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.predict(images)[1].argmax(axis=1) == labels).mean())

    def score(self, images: np.ndarray, reference_features: np.ndarray) -> dict:
        """All metrics of ``images`` against the reference (test set) features."""
        features, probabilities = self.predict(images)
        coverage = metrics.mode_coverage(probabilities)
        precision, recall = metrics.precision_recall(reference_features, features)
        return {
            "frechet_distance": metrics.frechet_distance(features, reference_features),
            "classifier_score": metrics.classifier_score(probabilities),
            "digits_covered": coverage["digits_covered"],
            "kl_from_uniform": coverage["kl_from_uniform"],
            "confident_fraction": coverage["confident_fraction"],
            "precision": precision,
            "recall": recall,
            "histogram": coverage["histogram"],
            "n": len(images),
        }


_LOADED: dict[tuple, Evaluator] = {}  # Evaluator.load's, by weights file and its version


# --- evaluating a training run -----------------------------------------------------


def reference_images(data: ImageData, n: int) -> np.ndarray:
    """The test images that ``n`` generated ones are measured against: as many as
    there are generated ones (a fixed subset when n is below the test set's size), so
    the distance and precision/recall of a small evaluation mean what a full one's do
    (both grow biased when the two sets differ in size)."""
    if n >= len(data.x_test):
        return data.x_test
    return data.x_test[np.random.default_rng(0).choice(len(data.x_test), n, replace=False)]


def evaluate_run(
    run_dir: Path,
    n: int = 10_000,
    seed: int = 0,
    data: ImageData | None = None,
    evaluator: Evaluator | None = None,
) -> dict:
    """Metrics of a run's generator on ``n`` samples, beside ``n`` real training images
    (`evaluate_models`), with the classifier of the run's own data set; also the run's
    folder and what was loaded from it."""
    from gan_mnist.checkpoint_files import load_generator
    from gan_mnist.data import load_dataset

    models, config, source = load_generator(Path(run_dir))
    if data is None:
        # The run's own data file if it is still there, else the data set's usual copy
        # (the test images are the same; a moved file is not the user's mistake).
        trained_on = config.data if config.data and Path(config.data).exists() else None
        if config.data and trained_on is None:
            print(f"note: {config.data} (the run's --data) is gone; using {config.dataset}.")
        data = load_dataset(config.dataset, trained_on)
    if data.dataset != config.dataset:
        raise UserError(
            f"{run_dir} was trained on {config.dataset}, but the data given is {data.dataset}."
        )
    result = evaluate_models(models, n, seed, data, evaluator)
    return {"run": str(run_dir), "generator": source, "model": config.model, **result}


def evaluate_generator(
    generator: keras.Model, n: int = 10_000, seed: int = 0, data: ImageData | None = None
) -> dict:
    """`evaluate_models` for an unconditional Keras generator of pixels in [-1, 1] (a
    notebook's own, say), on MNIST unless ``data`` says otherwise."""
    from gan_mnist.data import load_dataset
    from gan_mnist.models import FAMILIES

    data = data or load_dataset("mnist")
    noise_dim = int(generator.input_shape[-1])
    return evaluate_models(GanModels(generator, None, FAMILIES["dcgan"], noise_dim), n, seed, data)


def evaluate_models(
    models: GanModels,
    n: int,
    seed: int,
    data: ImageData,
    evaluator: Evaluator | None = None,
) -> dict:
    """Metrics of ``n`` samples of ``models``' generator, beside ``n`` real training images.

    Both are compared with ``n`` of the data set's test images (all 10,000 for the
    default n), using the data set's classifier; the real images' row is the ceiling a
    perfect generator would reach. For conditional models, also the share of each
    class's samples that the classifier labels as that class.
    """
    from gan_mnist.sampling import generate_images

    if n > len(data.x_train):
        raise UserError(f"--n {n} is more than the {len(data.x_train)} real training images.")
    evaluator = evaluator or Evaluator.load(dataset=data.dataset)
    reference, _ = evaluator.predict(reference_images(data, n))
    real = data.x_train[np.random.default_rng(seed).choice(len(data.x_train), n, replace=False)]
    result = {
        "dataset": data.dataset,
        "n": n,
        "seed": seed,
        "generated": evaluator.score(generate_images(models, n, seed), reference),
        "real_data_ceiling": evaluator.score(real, reference),
    }
    if models.conditional:
        result["class_accuracy"] = class_accuracy(models, evaluator, n, seed)
    return result


def class_accuracy(models, evaluator: Evaluator, n: int, seed: int) -> dict:
    """For a conditional generator: of the samples asked to be class c (n / 10 each),
    the share that the classifier labels c.

    Returns:
        {"per_class": [10 shares], "mean", "min", "n_per_class"}.
    """
    from gan_mnist.sampling import generate_images

    per_class_n = max(n // NUM_CLASSES, 1)
    shares = []
    for label in range(NUM_CLASSES):
        images = generate_images(models, per_class_n, seed + label, label=label)
        shares.append(evaluator.accuracy(images, np.full(per_class_n, label)))
    return {
        "per_class": shares,
        "mean": float(np.mean(shares)),
        "min": float(np.min(shares)),
        "n_per_class": per_class_n,
    }


def format_table(result: dict) -> str:
    """The metrics as a readable two-column table."""
    lines = [f"{'metric':62} {'generated':>10} {'real data':>10}", "-" * 84]
    for metric in metrics.METRICS:
        cells = [
            "n/a" if value is None else f"{value:{metric.fmt}}"  # KL without a confident one
            for value in (result["generated"][metric.key], result["real_data_ceiling"][metric.key])
        ]
        lines.append(f"{metric.label:62} {cells[0]:>10} {cells[1]:>10}")
    lines.append(f"{'class histogram (0..9), generated':62} {result['generated']['histogram']}")
    if "class_accuracy" in result:
        accuracy = result["class_accuracy"]
        from gan_mnist.data import DATASETS

        names = DATASETS[result.get("dataset", "mnist")].class_names
        shares = " ".join(
            f"{name}:{share:.3f}" for name, share in zip(names, accuracy["per_class"], strict=True)
        )
        lines += [
            "",
            f"samples asked for class c that the classifier labels c "
            f"({accuracy['n_per_class']} per class): mean {accuracy['mean']:.3f}, "
            f"min {accuracy['min']:.3f}",
            f"  {shares}",
        ]
    return "\n".join(lines)


class TrainingEvaluation:
    """``--eval-every``: measure a fixed-noise sample, and say when it is the best so far."""

    METRICS = metrics.HEADLINE

    def __init__(self, data: ImageData, samples: int, seed: int, history: list[dict]):
        self.evaluator = Evaluator.load(dataset=data.dataset)
        self.reference, _ = self.evaluator.predict(reference_images(data, samples))
        self.samples, self.seed = samples, seed
        # A resumed run remembers its best distance from history.csv.
        self.best = min(
            (float(r["frechet_distance"]) for r in history if r.get("frechet_distance")),
            default=float("inf"),
        )

    def __call__(self, models) -> tuple[dict, bool]:
        """Returns: (the metrics for history.csv, whether this is the best distance yet)."""
        from gan_mnist.sampling import generate_images

        # The same noise every time, so epochs differ only by the generator.
        scores = self.evaluator.score(
            generate_images(models, self.samples, self.seed), self.reference
        )
        row = {key: scores[key] for key in self.METRICS}
        improved = row["frechet_distance"] < self.best
        self.best = min(self.best, row["frechet_distance"])
        return row, improved
