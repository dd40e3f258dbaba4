"""The classifiers that measure generated images, and the evaluation of a run.

One small CNN per data set (MNIST, Fashion-MNIST); a run is always measured by the
classifier of its own data set. The weights ship in the package
(``weights/DATASET_classifier.weights.h5``), so evaluating needs no training;
``gan-mnist train-evaluator [--dataset NAME]`` reproduces them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from gan_mnist import metrics
from gan_mnist.config import EVALUATOR_EPOCHS
from gan_mnist.data import IMAGES, NUM_CLASSES, ImageData
from gan_mnist.errors import UserError
from gan_mnist.models.base import GanModels

WEIGHTS_DIR = Path(__file__).with_name("weights")
FEATURES = "features"
FEATURE_SIZE = 128  # units of the FEATURES layer


def weights_path(dataset: str = "mnist") -> Path:
    """Where the shipped classifier of ``dataset`` lives."""
    return WEIGHTS_DIR / f"{dataset}_classifier.weights.h5"


# A folder of images is measured only by a classifier trained on it: with at least two
# classes to tell apart, and enough images that 128 features per image mean something
# (a Fréchet distance estimates a 128 x 128 covariance: thousands of images).
MIN_FOLDER_CLASSES, MIN_FOLDER_IMAGES = 2, 2000


def folder_classifier(data: ImageData) -> Path:
    """Where `gan-mnist train-evaluator --data FOLDER` keeps a folder's classifier: in
    this project's cache, keyed by the digest of the folder's images (its accuracy and
    classes beside it, in a .json file of the same name)."""
    from gan_mnist.data import cache_dir

    return cache_dir() / "classifiers" / f"{data.digest}.weights.h5"


def check_measurable(data: ImageData) -> None:
    """Refuse a folder of images that no classifier can be trained on, saying why."""
    classes, images = len(data.class_names), len(data.x_train)
    if classes < MIN_FOLDER_CLASSES or images < MIN_FOLDER_IMAGES:
        raise UserError(
            f"{data.source} cannot be measured: that needs a classifier trained on it, and "
            f"so at least {MIN_FOLDER_CLASSES} classes (one subfolder each) and "
            f"{MIN_FOLDER_IMAGES:,} images; it has {classes} and {images:,}. Judge its "
            "pictures by eye (DCGAN_Images/, gan-mnist sample ... --grid)."
        )


WEIGHTS = weights_path("mnist")


def build_classifier(num_classes: int = NUM_CLASSES) -> keras.Model:
    """A small CNN: uint8 images (batch, 28, 28) -> a logit per class; its 128-d
    penultimate layer (named "features") is the feature space of the Fréchet distance.

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
            layers.Dense(num_classes, name="logits"),
        ],
        name="mnist_classifier",
    )


def train_classifier(
    data: ImageData, epochs: int | None = None, seed: int = 0, verbose: int = 2
) -> tuple[keras.Model, float]:
    """Train the classifier on a data set's training images (for ``epochs``, by default
    `EVALUATOR_EPOCHS` of its data set); a folder's on all but its held-out tenth.

    Returns:
        (model, accuracy on the test images: MNIST's 10,000, or a folder's held-out).
    """
    epochs = EVALUATOR_EPOCHS[data.dataset] if epochs is None else epochs
    keras.utils.set_random_seed(seed)
    model = build_classifier(len(data.class_names))
    x, y = data.x_train, data.y_train
    if data.held_out is not None:  # a folder: its test images are training images too
        x, y = x[~data.held_out], y[~data.held_out]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        verbose=verbose,
        validation_data=(data.x_test, data.y_test),
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=1000, verbose=0)
    return model, float(accuracy)


class Evaluator:
    """Features and class probabilities of images, and the metrics built on them."""

    def __init__(self, model: keras.Model, about: str = ""):
        self.model = model
        self.about = about  # which classifier, for the table: a folder's says how good
        both = keras.Model(model.inputs, [model.get_layer(FEATURES).output, model.outputs[0]])
        # One graph for any number of images: Keras' predict traces again for each new
        # last-batch size, and after a few it warns of retracing (into a notebook's cell).
        self._features_and_logits = tf.function(
            lambda images: both(images, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28], tf.float32)],
        )

    @classmethod
    def load(
        cls, path: Path | None = None, dataset: str = "mnist", data: ImageData | None = None
    ) -> Evaluator:
        """The shipped classifier of ``dataset``, a folder's own (``data``, of the data
        set `images`: trained by `gan-mnist train-evaluator --data FOLDER`), or the
        weights at ``path``; shared by every caller in the process while the file is
        unchanged: use it, do not train or modify its model."""
        classes, retrain = NUM_CLASSES, f"`gan-mnist train-evaluator --dataset {dataset}`"
        about = f"the classifier {path}" if path is not None else f"the shipped {dataset} one"
        if dataset == IMAGES:
            if data is None:
                raise UserError("measuring a run of your own images needs its --data folder.")
            check_measurable(data)
            classes, folder = len(data.class_names), data.source
            retrain = f"`gan-mnist train-evaluator --data {folder}`"
            if path is None:
                path = folder_classifier(data)
                if not path.exists():
                    raise UserError(
                        f"no classifier knows the images of {folder} yet, and an MNIST one "
                        f"would measure nothing of them. Train one with {retrain} (it trains "
                        "on most of the images and says how often it is right on the rest), "
                        "then measure again."
                    )
                about = f"the classifier trained on {folder}"
                with contextlib.suppress(OSError, ValueError, KeyError):  # written after it
                    trained = json.loads(path.with_suffix("").with_suffix(".json").read_text())
                    about += (
                        f" ({trained['accuracy']:.1%} right on its "
                        f"{trained['test_images']:,} held-out images)"
                    )
        path = Path(path) if path is not None else weights_path(dataset)
        if not path.exists():
            raise UserError(f"no evaluator weights at {path}. Train them with {retrain}.")
        # One evaluator per weights file as it is now, for the whole process: a new one
        # per evaluation (a notebook's exercises) would trace its call again each time,
        # and TensorFlow warns of retracing after a few.
        stat = path.stat()  # a rewrite or rename changes ctime, which no copy can set
        key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
        if key not in _LOADED:
            model = build_classifier(classes)
            try:
                model.load_weights(path)
            except Exception as error:  # h5py and Keras raise many kinds for a damaged file
                raise UserError(
                    f"the evaluator weights {path} cannot be read ({str(error)[:160]}); the "
                    f"file is damaged or for other classes. Retrain them with {retrain}."
                ) from None
            _LOADED[key] = cls(model, about)
        return _LOADED[key]

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Args: images (N, 28, 28) uint8. Returns: features (N, 128), probabilities (N, K)."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)  # also (N, 28, 28, 1)
        if not len(images):
            classes = self.model.output_shape[-1]
            return np.zeros((0, FEATURE_SIZE), np.float32), np.zeros((0, classes), np.float32)
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
    classifier: Path | None = None,
) -> dict:
    """Metrics of a run's generator on ``n`` samples, beside ``n`` real training images
    (`evaluate_models`), with the classifier of the run's own data set (or the weights
    file ``classifier``); also the run's folder and what was loaded from it."""
    from gan_mnist.checkpoint_files import load_generator
    from gan_mnist.data import load_dataset

    models, config, source = load_generator(Path(run_dir))
    if data is None:
        # The run's own data file if it is still there, else the data set's usual copy
        # (the test images are the same; a moved file is not the user's mistake).
        trained_on = config.data if config.data and Path(config.data).exists() else None
        if config.dataset == IMAGES and trained_on is None:
            raise UserError(
                f"{run_dir} was trained on the images of {config.data}, which are gone: "
                "measuring needs them (their held-out tenth, and the classifier trained on "
                "them). Pass --data FOLDER if they moved."
            )
        if config.data and trained_on is None:
            print(f"note: {config.data} (the run's --data) is gone; using {config.dataset}.")
        data = load_dataset(config.dataset, trained_on)
    if data.dataset != config.dataset:
        raise UserError(
            f"{run_dir} was trained on {config.dataset}, but the data given is {data.dataset}."
        )
    if data.names is not None and tuple(data.names) != config.classes:
        raise UserError(
            f"{run_dir} was trained on images of the classes {', '.join(config.classes)}, but "
            f"{data.source} has {', '.join(data.names)}: give the run's own folder."
        )
    if classifier is not None:
        evaluator = Evaluator.load(classifier, data.dataset, data)
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
    default n; a folder's held-out tenth, ``n`` at most as many), using the data set's
    classifier; the real images' row is the ceiling a perfect generator would reach.
    For conditional models, also the share of each class's samples that the classifier
    labels as that class.
    """
    from gan_mnist.sampling import generate_images

    evaluator = evaluator or Evaluator.load(dataset=data.dataset, data=data)
    if data.held_out is not None and n > len(data.x_test):
        print(f"note: {len(data.x_test)} samples, as many as the folder's held-out images.")
        n = len(data.x_test)
    reference, _ = evaluator.predict(reference_images(data, n))
    # The ceiling's real images: a folder's from the rest, not its held-out reference.
    pool = data.x_train if data.held_out is None else data.x_train[~data.held_out]
    if n > len(pool):
        raise UserError(f"--n {n} is more than the {len(pool)} real training images.")
    real = pool[np.random.default_rng(seed).choice(len(pool), n, replace=False)]
    result = {
        "dataset": data.dataset,
        "classifier": evaluator.about,
        "class_names": list(data.class_names),
        "n": n,
        "seed": seed,
        "generated": evaluator.score(generate_images(models, n, seed), reference),
        "real_data_ceiling": evaluator.score(real, reference),
    }
    if models.conditional:
        result["class_accuracy"] = class_accuracy(models, evaluator, n, seed)
    return result


def class_accuracy(models, evaluator: Evaluator, n: int, seed: int) -> dict:
    """For a conditional generator: of the samples asked to be class c (n / K each),
    the share that the classifier labels c.

    Returns:
        {"per_class": [K shares], "mean", "min", "n_per_class"}.
    """
    from gan_mnist.sampling import generate_images

    per_class_n = max(n // models.num_classes, 1)
    shares = []
    for label in range(models.num_classes):
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
    from gan_mnist.data import DATASETS

    names = result.get("class_names") or DATASETS[result.get("dataset", "mnist")].class_names
    histogram = f"class histogram ({names[0]}..{names[-1]}), generated"
    lines.append(f"{histogram:62} {result['generated']['histogram']}")
    if "class_accuracy" in result:
        accuracy = result["class_accuracy"]
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
        self.evaluator = Evaluator.load(dataset=data.dataset, data=data)
        samples = min(samples, len(data.x_test))  # a folder's held-out images, at most
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
