"""The `tf.GradientTape` training step, the heart of the project, and the compiled call
that runs it under the run's strategy with its bookkeeping."""

from __future__ import annotations

import keras
import tensorflow as tf

from gan_mnist.losses import LOSSES, GanLoss
from gan_mnist.models.base import GanModels
from gan_mnist.state import TrainingState


def make_train_step(
    models: GanModels,
    loss: GanLoss,
    generator_optimizer: keras.optimizers.Optimizer,
    discriminator_optimizer: keras.optimizers.Optimizer,
    rng: tf.random.Generator,
    global_batch_size: int,
):
    """Build the step that trains both networks on one batch (not compiled).

    The caller compiles it (`tf.function`), on one device or, per replica, under a
    `tf.distribute` strategy: nothing in it depends on which.

    Args:
        models: the generator and discriminator of any family.
        loss: the `GanLoss` both networks minimise (see `gan_mnist.losses`).
        generator_optimizer, discriminator_optimizer: one Adam each, since the two
            networks play opposite sides of the game.
        rng: draws the noise (and, for conditional families, the fakes' classes); it
            is part of the checkpoint, so a resumed run goes on with fresh noise.
        global_batch_size: images per step over all replicas; losses are averaged
            over it, so the replicas' gradients add up to the whole batch's.

    Returns:
        ``train_step(images, labels, noise=None, fake_labels=None) -> {"d_loss",
        "g_loss"}`` with images (batch, 28, 28, 1) in the family's pixel range and
        labels (batch,) int. The noise (and a conditional family's classes for the
        fakes) are drawn from ``rng`` unless given (tests pass them to compare devices).
    """

    def average(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

    def train_step(images, labels, noise=None, fake_labels=None):
        batch = tf.shape(images)[0]
        drawn_noise, drawn_labels = models.draw_latents(rng, batch)  # (batch, noise_dim)
        noise = drawn_noise if noise is None else noise
        fake_labels = drawn_labels if fake_labels is None else fake_labels

        # One forward pass, two tapes: each network's loss is differentiated only
        # with respect to its own weights. The discriminator is thus "frozen" in the
        # generator's update without any trainable=False switching.
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = models.generate(noise, fake_labels, training=True)
            real_logits, real_classes = models.judge(images, labels, training=True)
            fake_logits, fake_classes = models.judge(generated_images, fake_labels, training=True)
            g_loss = average(loss.generator(fake_logits))
            d_loss = average(loss.discriminator(real_logits, fake_logits))
            # A family with a class head (cdcgan) adds a classification loss: D learns
            # the classes from real images only, G must draw the class it was asked for.
            # It is trained on, not reported: the logged losses stay the GAN's own, so
            # the loss curves of all families compare.
            g_total, d_total = g_loss, d_loss
            if models.class_loss_weight:
                g_total += average(models.class_loss(fake_classes, fake_labels))
                d_total += average(models.class_loss(real_classes, labels))
            # Mixed precision: each loss is multiplied by its optimizer's loss scale, so
            # float16 gradients do not underflow; apply_gradients divides it out again.
            # Without it, scale_loss returns the loss unchanged.
            scaled_g_loss = generator_optimizer.scale_loss(g_total)
            scaled_d_loss = discriminator_optimizer.scale_loss(d_total)

        generator = models.generator
        discriminator = models.discriminator
        gen_grads = gen_tape.gradient(scaled_g_loss, generator.trainable_variables)
        disc_grads = disc_tape.gradient(scaled_d_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(gen_grads, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(disc_grads, discriminator.trainable_variables, strict=True)
        )
        return {"d_loss": d_loss, "g_loss": g_loss}

    return train_step


def compile_step(state: TrainingState, steps_per_epoch: int | None = None):
    """The run's train step, compiled into a TensorFlow graph, with its bookkeeping.

    Each call runs ``n`` steps from a (distributed) batch iterator: each step runs
    per replica under the strategy (`strategy.run`), its losses are summed over the
    replicas (each is already divided by the global batch), added to the epoch's
    sums and checked for NaN, all on the device, and the averaged generator (--ema)
    moves toward the trained one; with --lr-decay, each step first sets both learning
    rates (``steps_per_epoch``, needed then, places the run's last step). The loop
    reads the sums a few times a second instead of waiting for every step.
    """
    config, runtime = state.config, state.runtime
    strategy = runtime.strategy
    step = make_train_step(
        state.models,
        LOSSES[config.loss],
        state.generator_optimizer,
        state.discriminator_optimizer,
        state.rng,
        global_batch_size=config.batch_size,
    )
    if runtime.jit_compile:  # XLA: the step's ops fused per replica
        step = tf.function(step, jit_compile=True, autograph=False)
    update_average = average_update(state)
    set_learning_rates = learning_rate_update(state, steps_per_epoch)

    def replica_step(images, labels):
        losses = step(images, labels)
        return tf.stack([losses["d_loss"], losses["g_loss"]])  # one all-reduce for both

    def one_step(iterator):
        if set_learning_rates is not None:
            set_learning_rates()
        images, labels = next(iterator)
        losses = strategy.reduce("SUM", strategy.run(replica_step, (images, labels)), axis=None)
        d_loss, g_loss = losses[0], losses[1]
        state.step_in_epoch.assign_add(1)
        state.step.assign_add(1)
        state.loss_sums.assign_add(losses)
        finite = tf.math.is_finite(d_loss) & tf.math.is_finite(g_loss)
        first_bad = tf.logical_and(tf.logical_not(finite), state.nonfinite_at < 0)
        state.nonfinite_at.assign(tf.where(first_bad, state.step_in_epoch, state.nonfinite_at))
        if update_average is not None:
            update_average()

    return calls_of(one_step)


def calls_of(one_step):
    """``run_steps(iterator, n)``: ``n`` calls of the training step ``one_step`` in one
    compiled call (its `graphs()` counts the traces of the loop, for the tests)."""
    # autograph=False: no loop or branch on a tensor to rewrite, so it is traced as
    # written (about 0.8 s off each run's start); `several` needs it for tf.range.
    single = tf.function(one_step, autograph=False)

    @tf.function
    def several(iterator, n):
        for _ in tf.range(n):  # one graph for any n: no retracing at an epoch's end
            one_step(iterator)

    def run_steps(iterator, n):
        # One step without a loop: Grappler fuses conv + bias + activation only outside
        # while loops, so on a CPU (1 step per call) the step is not slowed by one.
        if int(n) == 1:
            return single(iterator)
        # A tensor, not a Python int: a Python value is part of the graph's signature,
        # so each distinct n (an epoch's last call, a resume's offset) would retrace.
        return several(iterator, tf.constant(n, tf.int32))

    run_steps.graphs = lambda: several.experimental_get_tracing_count()  # for the tests
    return run_steps


def average_update(state: TrainingState):
    """The --ema update, or None: an exponential moving average of every weight of the
    generator (BatchNorm's moving statistics too) with the decay D given, from the
    first step. Bias-corrected as Adam's moments are: after t batches step s weighs
    D ** (t - s), normalised over the steps so far, so the average starts at the
    trained weights (not the random ones) and spans about the last 1 / (1 - D) steps
    once t is well past that. As a recursion: average <- d * average + (1 - d) *
    generator with d = D (1 - D ** (t - 1)) / (1 - D ** t), which is 0 at t = 1 and
    tends to D."""
    if state.average_generator is None:
        return None
    pairs = [
        (average, trained)
        for average, trained in zip(
            state.average_generator.weights, state.models.generator.weights, strict=True
        )
        if "float" in str(average.dtype)
    ]
    ema = state.config.ema

    def update():
        # The batches trained, this one included (>= 1 here), not Adam's count: a float16
        # step skipped for an overflow leaves that at 0 on the first step, where d would
        # be -inf. A skipped step's unchanged weights count as that step's.
        t = tf.cast(state.step, tf.float32)
        decay = ema * (1.0 - ema ** (t - 1.0)) / (1.0 - ema**t)
        for average, trained in pairs:
            average.assign(decay * average + (1.0 - decay) * trained)

    return update


def learning_rate_update(state: TrainingState, steps_per_epoch: int | None):
    """The --lr-decay update, or None (off): before each step each Adam's rate becomes
    its --gen-lr or --disc-lr times 1 - (steps done) / (the run's steps), the
    ``linear`` line from the full rate at the first step to 0 after the last one of
    --epochs. Steps are counted in the run's own units, epochs done times
    ``steps_per_epoch`` plus the steps of the epoch under way (both in the
    checkpoint), so a resumed run goes on along the line, also with another
    --batch-size or --limit, and an epoch started again is on it where it was."""
    config = state.config
    if config.lr_decay == "off":
        return None
    if not steps_per_epoch:
        raise ValueError("--lr-decay needs the steps of an epoch (compile_step's steps_per_epoch)")
    rates = [(adam.learning_rate, rate) for adam, rate in state.adams_and_rates()]
    per_epoch = tf.constant(steps_per_epoch, tf.int64)
    last = float(config.epochs * steps_per_epoch)

    def update():
        done = tf.cast(state.epoch * per_epoch + state.step_in_epoch, tf.float32)
        left = tf.maximum(0.0, 1.0 - done / last)
        for variable, rate in rates:
            variable.assign(rate * left)

    return update
