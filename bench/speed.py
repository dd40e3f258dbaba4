"""Training speed: the project's full training loop against a plain re-implementation
of the TensorFlow tutorial's loop, on the same architecture and data, alternated in
one run (the CPU here runs in bursts, so only side-by-side ratios mean anything).

    python bench/speed.py                 # tutorial DCGAN, batch 256, 4 rounds
    python bench/speed.py --rounds 6 --images 10240
    python bench/speed.py --preset demo   # the networks and recipe `demo` trains
    python bench/speed.py --preset demo --vary steps_per_call=8 --vary jit_compile=off

``--vary KEY=VALUE[,KEY=VALUE]`` adds a project loop with those settings changed, run
in every round beside the others, and reports its ratio to the project loop.

Each round runs the loops in another order (rotated, then reversed), so that the CPU's
bursts fall on all of them alike.

Prints images/s of each round, the median ratio (project / plain), the analytic GFLOP
per trained image, and the achieved GFLOP/s against an fp32 matrix-multiply peak
measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from gan_mnist.config import make_config
from gan_mnist.data import load_dataset
from gan_mnist.models import build_models
from gan_mnist.training import train


def plain_tutorial_loop(
    images: np.ndarray, config, epochs: int, out_dir: Path, jit_compile: bool = False
) -> float:
    """The TensorFlow tutorial's loop, as the classic notebooks copy it, for the preset's
    networks (XLA if ``jit_compile``, as the project's loop compiles them): seconds taken."""
    started = time.perf_counter()
    models = build_models(config)
    generator, discriminator = models.generator, models.discriminator
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(config.gen_lr, beta_1=config.beta_1)
    discriminator_optimizer = keras.optimizers.Adam(config.disc_lr, beta_1=config.beta_1)
    checkpoint = tf.train.Checkpoint(
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        generator=generator,
        discriminator=discriminator,
    )
    seed = tf.random.normal([16, config.noise_dim])
    dataset = (
        tf.data.Dataset.from_tensor_slices(
            (images[..., np.newaxis].astype("float32") - 127.5) / 127.5
        )
        .shuffle(len(images))
        .batch(config.batch_size)
    )

    @tf.function(jit_compile=jit_compile)
    def train_step(batch):
        noise = tf.random.normal([config.batch_size, config.noise_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(batch, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        disc_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(gen_grads, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(disc_grads, discriminator.trainable_variables, strict=True)
        )

    for epoch in range(epochs):
        for batch in dataset:
            train_step(batch)
        predictions = generator(seed, training=False)  # the tutorial's per-epoch image
        keras.utils.save_img(out_dir / f"image_at_epoch_{epoch:04d}.png", predictions[0])
    checkpoint.save(str(out_dir / "ckpt"))
    return time.perf_counter() - started


def project_loop(data, config, out_dir: Path) -> float:
    started = time.perf_counter()
    train(config, out_dir, data=data, quiet=True)
    return time.perf_counter() - started


def forward_flops(model: keras.Model) -> float:
    """Multiply-adds x 2 of one image's forward pass through Dense and conv layers."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, layers.Conv2DTranspose):
            k1, k2, cout, cin = layer.kernel.shape
            h, w = layer.input.shape[1:3]
            total += 2 * k1 * k2 * cin * cout * h * w
        elif isinstance(layer, layers.Conv2D):
            k1, k2, cin, cout = layer.kernel.shape
            h, w = layer.output.shape[1:3]
            total += 2 * k1 * k2 * cin * cout * h * w
    return total


def matmul_peak(seconds: float = 3.0, n: int = 2048) -> float:
    """Achieved fp32 matmul GFLOP/s on this machine now."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    (a @ b).numpy()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        (a @ b).numpy()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--images", type=int, default=7680, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--preset", default="tutorial", help="whose networks and recipe (tutorial, demo, ...)"
    )
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="also run the project loop with these settings changed",
    )
    args = parser.parse_args()

    data = load_dataset("mnist")
    config = make_config(
        args.preset, epochs=args.epochs, limit=args.images, seed=0, checkpoint_every=15
    )
    # The plain loop compiles as the project's does for these networks (XLA or not),
    # so the ratio measures the project's loop, not a compiler flag.
    jit = config.jit_compile == "on"
    print(
        f"{config.model} networks, batch {config.batch_size}, XLA {'on' if jit else 'off'}, "
        f"averaged generator {'on' if config.ema else 'off'} (project loop only)"
    )
    models = build_models(config)
    # One training step: G forward and backward (3x), D forward and backward on the
    # real and on the fake batch (2 x 3x).
    gflop = (3 * forward_flops(models.generator) + 6 * forward_flops(models.discriminator)) / 1e9
    trained = args.images // config.batch_size * config.batch_size * args.epochs
    variants = {"project": config}
    for text in args.vary:
        changes = dict(item.split("=", 1) for item in text.split(","))
        typed = {k: type(getattr(config, k))(v) for k, v in changes.items()}
        variants[text] = dataclasses.replace(config, **typed)
    names = [*variants, "plain"]
    speeds = {name: [] for name in names}
    peaks = []
    for round_number in range(1, args.rounds + 1):
        peaks.append(matmul_peak())
        # Each round another order: the CPU's bursts start and end at random, and a
        # fixed order would hand whatever follows the matmul probe to one loop.
        shift = (round_number - 1) // 2 % len(names)
        order = names[shift:] + names[:shift]
        order = order if round_number % 2 else order[::-1]
        for name in order:
            with tempfile.TemporaryDirectory() as out:
                if name == "plain":
                    seconds = plain_tutorial_loop(
                        data.x_train[: args.images], config, args.epochs, Path(out), jit
                    )
                else:
                    seconds = project_loop(data, variants[name], Path(out))
            speeds[name].append(trained / seconds)
            print(f"round {round_number} {name:8} {trained / seconds:7.1f} img/s", flush=True)
    ratios = [p / q for p, q in zip(speeds["project"], speeds["plain"], strict=True)]
    peak = statistics.median(peaks)
    print(
        f"\nGFLOP per trained image: {gflop:.3f}; fp32 matmul peak measured in this run: "
        f"{peak:.0f} GFLOP/s (median of {len(peaks)}); each run includes compiling, "
        f"{args.epochs} epochs of {args.images} images, per-epoch images and a checkpoint."
    )
    for name in names:
        speed = statistics.median(speeds[name])
        print(
            f"  {name:28} median {speed:6.1f} img/s = {speed * gflop:4.0f} GFLOP/s "
            f"({speed * gflop / peak:.0%} of the peak)"
        )
    print(
        f"median ratio project / plain: {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    for name in args.vary:
        mine = [p / q for p, q in zip(speeds[name], speeds["project"], strict=True)]
        print(
            f"median ratio {name} / project: {statistics.median(mine):.3f} "
            f"(rounds: {', '.join(f'{r:.3f}' for r in mine)})"
        )


if __name__ == "__main__":
    main()
