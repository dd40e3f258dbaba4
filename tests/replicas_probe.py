"""One training step on 1 device and on 2 replicas (logical CPUs), compared.

Run by tests/test_devices.py in a fresh process (the CPU must be split into two
logical devices before TensorFlow starts); prints one JSON object:

- ``sync`` / ``nosync``: the largest difference between the weights after one
  step on 2 replicas and after the same step on 1 device (same global batch, data,
  noise and starting weights; plain SGD, so a gradient scaled twice would show as
  a doubled update), with BatchNorm synchronised across replicas or not;
  ``update``: the largest weight change of the step, for scale.
- ``noise``: the noise two replicas draw from one generator, to check it differs.
- ``dropout``: how much two replicas' dropout outputs on the same images differ.
"""

from __future__ import annotations

import json
import os

os.environ["GAN_MNIST_CPU_DEVICES"] = "2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gan_mnist.config import make_config  # noqa: E402
from gan_mnist.devices import distribute, runtime  # noqa: E402
from gan_mnist.losses import LOSSES  # noqa: E402
from gan_mnist.models import FAMILIES, build_models  # noqa: E402
from gan_mnist.models.base import synchronize_batchnorm  # noqa: E402
from gan_mnist.step import make_train_step  # noqa: E402

BATCH = 32


def step_weights(strategy: str, sync: bool, batch, start, model: str):
    config = make_config("smoke", model=model, strategy=strategy, dropout=0.0, seed=0)
    place = runtime(config)
    with place.strategy.scope():
        models = build_models(config)
        for network, weights in zip((models.generator, models.discriminator), start, strict=True):
            network.set_weights(weights)
        if sync:
            synchronize_batchnorm(models)
        optimizers = [keras.optimizers.SGD(0.5) for _ in range(2)]
        rng = tf.random.Generator.from_seed(0)
        step = make_train_step(models, LOSSES[config.loss], *optimizers, rng, BATCH)
    dataset = distribute(place, tf.data.Dataset.from_tensor_slices(batch).batch(BATCH))

    @tf.function
    def run(inputs):
        place.strategy.run(step, args=inputs)

    run(next(iter(dataset)))
    return [w.numpy() for n in (models.generator, models.discriminator) for w in n.weights]


def replica_noise():
    config = make_config("smoke", strategy="mirrored", seed=0)
    place = runtime(config)
    with place.strategy.scope():
        models = build_models(config)
        rng = tf.random.Generator.from_seed(0)

    @tf.function
    def draw():
        return place.strategy.run(lambda: models.draw_latents(rng, 4)[0])

    return [r.numpy().tolist() for r in place.strategy.experimental_local_results(draw())]


def replica_dropout() -> float:
    """How much two replicas' discriminator outputs differ on the same images with
    dropout on (0 = the same units dropped on both)."""
    import tempfile

    from gan_mnist.state import TrainingState

    config = make_config("smoke", strategy="mirrored", dropout=0.5, seed=0)
    with tempfile.TemporaryDirectory() as out:
        state = TrainingState(config, out)
        state.spread_dropout_seeds()
        strategy = state.runtime.strategy

        @tf.function
        def judge():
            images = tf.ones((2, 28, 28, 1))
            return strategy.run(lambda: state.models.discriminator(images, training=True))

        first, second = strategy.experimental_local_results(judge())
    return largest_difference([first.numpy()], [second.numpy()])


def largest_difference(first: list, second: list) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(first, second, strict=True))


def main() -> None:
    result = {"replicas": runtime(make_config("smoke", strategy="mirrored")).replicas}
    data = np.random.default_rng(0)
    images = data.uniform(-1, 1, (BATCH, 28, 28, 1)).astype("float32")
    labels = data.integers(0, 10, BATCH).astype("int32")
    noise = data.normal(size=(BATCH, 100)).astype("float32")
    for model in FAMILIES:
        noise_dim = make_config("smoke", model=model).noise_dim
        keras.utils.set_random_seed(1)
        built = build_models(make_config("smoke", model=model, dropout=0.0))
        start = [built.generator.get_weights(), built.discriminator.get_weights()]
        flat_start = start[0] + start[1]
        batch = (images, labels, noise[:, :noise_dim], labels)  # the fakes' classes: the real ones'
        one = step_weights("one", False, batch, start, model)
        result[model] = {
            "update": largest_difference(one, flat_start),
        }
        for name, sync in (("sync", True), ("nosync", False)):
            two = step_weights("mirrored", sync, batch, start, model)
            result[model][name] = largest_difference(one, two)
    result["noise"] = replica_noise()
    result["dropout"] = replica_dropout()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
