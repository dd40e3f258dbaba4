"""The training loop in-process on tiny data: artifacts, resume, refusals."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from gan_mnist import artifacts
from gan_mnist.checkpoint_files import load_generator
from gan_mnist.config import make_config
from gan_mnist.data import load_mnist
from gan_mnist.devices import runtime
from gan_mnist.errors import UserError
from gan_mnist.sampling import generate_images
from gan_mnist.state import TrainingState
from gan_mnist.training import train


def load_generator_file(path):
    """Load a saved generator as `load_generator` does for a run folder holding only it."""
    import shutil

    folder = path.parent / "only_generator"
    folder.mkdir()
    shutil.copy(path, folder / "generator.keras")
    shutil.copy(path.parent / "config.json", folder / "config.json")
    return load_generator(folder)


@pytest.fixture(scope="module")
def tiny(tiny_npz):
    return load_mnist(tiny_npz)


def smoke(**overrides):
    return make_config("smoke", seed=7, **overrides)


def history_rows(out_dir):
    with open(out_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_writes_every_artifact(tmp_path, tiny):
    summary = train(smoke(epochs=2, save_generator_every=1), tmp_path, data=tiny, quiet=True)

    assert (summary.first_epoch, summary.last_epoch) == (1, 2)
    for name in [
        "real_data.png",
        "config.json",
        "history.csv",
        "losses.png",
        "generator.keras",
        "dcgan_animation.gif",
        "dcgan_animation.png",
        "dcgan_images.zip",
        "DCGAN_Images/image_at_epoch_0001.png",
        "DCGAN_Images/image_at_epoch_0002.png",
        "generators/generator_epoch_0001.keras",
        "generators/generator_epoch_0002.keras",
    ]:
        assert (tmp_path / name).exists(), name
    rows = history_rows(tmp_path)
    assert list(rows[0]) == ["epoch", "d_loss", "g_loss", "seconds", "images_per_sec"]
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(float(r["images_per_sec"]) > 0 and np.isfinite(float(r["d_loss"])) for r in rows)
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 7
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_resume_continues_to_the_total_and_keeps_earlier_epochs(tmp_path, tiny):
    train(smoke(epochs=2), tmp_path, data=tiny, quiet=True)
    first_images = {e: artifacts.epoch_image_path(tmp_path, e).read_bytes() for e in (1, 2)}

    summary = train(smoke(epochs=3), tmp_path, data=tiny, quiet=True)

    assert (summary.first_epoch, summary.last_epoch) == (3, 3)
    for epoch, content in first_images.items():
        assert artifacts.epoch_image_path(tmp_path, epoch).read_bytes() == content
    assert [e for e, _ in artifacts.epoch_images(tmp_path)] == [1, 2, 3]
    assert [r["epoch"] for r in history_rows(tmp_path)] == ["1", "2", "3"]


def test_optimizer_state_and_epoch_survive_a_checkpoint(tmp_path, tiny):
    config = smoke(epochs=2)
    train(config, tmp_path, data=tiny, quiet=True)
    state = TrainingState(config, tmp_path)
    assert int(state.generator_optimizer.iterations.numpy()) == 0

    assert state.restore() == (2, 0)
    steps = 2 * (256 // 32)  # smoke: 256 images, batch 32, two epochs
    assert int(state.generator_optimizer.iterations.numpy()) == steps
    assert int(state.discriminator_optimizer.iterations.numpy()) == steps
    moments = [v for v in state.generator_optimizer.variables if "momentum" in v.path]
    assert moments and all(float(tf.reduce_sum(tf.abs(v))) > 0 for v in moments)


def test_finished_run_does_nothing(tmp_path, tiny, capsys):
    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    before = (tmp_path / "history.csv").read_bytes()
    summary = train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    assert summary.last_epoch == 1 and "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "history.csv").read_bytes() == before


def test_architecture_change_against_a_checkpoint_is_refused(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    with pytest.raises(UserError, match="--base-filters 8 -> 16"):
        train(smoke(epochs=2, base_filters=16), tmp_path, data=tiny, quiet=True)


def test_batch_larger_than_the_data_is_refused(tmp_path, tiny):
    with pytest.raises(UserError, match="--batch-size 512 is larger than the 256"):
        train(smoke(batch_size=512), tmp_path, data=tiny, quiet=True)


def test_unwritable_output_folder_is_refused(tmp_path, tiny):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write to the output folder"):
        train(smoke(), blocker / "run", data=tiny, quiet=True)


def test_epoch_callback_sees_each_epoch_and_its_image(tmp_path, tiny):
    seen = []
    train(
        smoke(epochs=2),
        tmp_path,
        data=tiny,
        quiet=True,
        on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["image_path"].name)),
    )
    assert seen == [(1, "image_at_epoch_0001.png"), (2, "image_at_epoch_0002.png")]


def test_sampling_from_checkpoint_and_from_saved_generator(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    models, config, source = load_generator(tmp_path)
    assert source.endswith("ckpt-8") and config.seed == 7 and config.model == "dcgan"
    from_checkpoint = generate_images(models, 10, seed=1)
    assert from_checkpoint.shape == (10, 28, 28) and from_checkpoint.dtype == np.uint8

    for path in (tmp_path / "training_checkpoints").iterdir():
        path.unlink()
    models, _, source = load_generator(tmp_path)
    assert source.endswith("generator.keras")
    np.testing.assert_array_equal(generate_images(models, 10, seed=1), from_checkpoint)


def test_sampling_a_folder_without_a_run_is_refused(tmp_path):
    with pytest.raises(UserError, match="no checkpoint and no generator.keras"):
        load_generator(tmp_path)


def test_eval_every_logs_metrics_and_keeps_the_best_generator(tmp_path, tiny, capsys):
    train(smoke(epochs=3, eval_every=1, eval_samples=64), tmp_path, data=tiny, quiet=True)

    rows = history_rows(tmp_path)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    distances = [float(r["frechet_distance"]) for r in rows]
    assert "FD " in capsys.readouterr().out
    # generator_best.keras is the generator of the epoch with the lowest distance:
    # measured again on the same samples, it gives exactly that epoch's numbers.
    from gan_mnist.evaluator import TrainingEvaluation

    models, _, source = load_generator_file(tmp_path / "generator_best.keras")
    scores, _ = TrainingEvaluation(tiny, 64, 7, [])(models)
    best = rows[int(np.argmin(distances))]
    assert scores["frechet_distance"] == pytest.approx(float(best["frechet_distance"]), rel=1e-4)
    assert scores["digits_covered"] == int(best["digits_covered"])

    # Resumed without evaluation: the metric columns stay, the new row leaves them empty.
    train(smoke(epochs=4), tmp_path, data=tiny, quiet=True)
    rows = history_rows(tmp_path)
    assert rows[3]["epoch"] == "4" and rows[3]["frechet_distance"] == ""
    assert rows[0]["frechet_distance"] != ""


def test_max_minutes_stops_mid_epoch_with_a_checkpoint_and_resumes_there(tmp_path, tiny, capsys):
    summary = train(smoke(epochs=50), tmp_path, data=tiny, quiet=True, max_minutes=0.001)

    assert summary.stopped_by_time and summary.last_epoch == 0
    assert 0 < summary.images_trained < 256  # cut inside the first epoch
    assert "Run the same command again to continue" in capsys.readouterr().out
    assert (tmp_path / "generator.keras").exists()
    state = TrainingState(smoke(epochs=50), tmp_path)
    assert state.restore() == (0, summary.images_trained // 32)  # the partial epoch kept

    resumed = train(smoke(epochs=2), tmp_path, data=tiny, quiet=True)
    assert (resumed.first_epoch, resumed.last_epoch) == (1, 2)
    assert f"and {summary.images_trained // 32} steps of epoch 1" in capsys.readouterr().out
    assert [e for e, _ in artifacts.epoch_images(tmp_path)] == [1, 2]


def test_damaged_latest_checkpoint_is_set_aside_and_the_previous_one_used(tmp_path, tiny, capsys):
    train(smoke(epochs=2), tmp_path, data=tiny, quiet=True)
    (data_file,) = (tmp_path / "training_checkpoints").glob("ckpt-16.data-*")
    data_file.write_bytes(data_file.read_bytes()[:100])  # as if the disk lost the rest

    models, _, source = load_generator(tmp_path)  # a reader falls back, and moves nothing
    assert source.endswith("ckpt-8")
    assert data_file.exists()

    summary = train(smoke(epochs=3), tmp_path, data=tiny, quiet=True)
    out = capsys.readouterr().out
    assert "damaged checkpoint files (ckpt-16)" in out and "using ckpt-8" in out
    assert "resuming from the checkpoint of epoch 1" in out
    assert (summary.first_epoch, summary.last_epoch) == (2, 3)
    damaged = tmp_path / "training_checkpoints" / "damaged"
    assert len((damaged / "1" / data_file.name).read_bytes()) == 100
    assert [r["epoch"] for r in history_rows(tmp_path)] == ["1", "2", "3"]

    # The newest, ckpt-24, is damaged, set aside and trained again, then damaged again:
    # the second ckpt-24 is set aside beside the first, never over it.
    for cut in (60, 50):
        (data_file,) = (tmp_path / "training_checkpoints").glob("ckpt-24.data-*")
        data_file.write_bytes(data_file.read_bytes()[:cut])
        train(smoke(epochs=3), tmp_path, data=tiny, quiet=True)
    assert len((damaged / "2" / data_file.name).read_bytes()) == 60
    assert len((damaged / "3" / data_file.name).read_bytes()) == 50
    assert len((damaged / "1" / data_file.name.replace("24", "16")).read_bytes()) == 100


def test_no_intact_checkpoint_left_is_one_clear_error(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    for data_file in (tmp_path / "training_checkpoints").glob("ckpt-*.data-*"):
        data_file.write_bytes(b"garbage")
    # A reader (sample, evaluate, the app) moves nothing, and says so.
    (tmp_path / "generator.keras").unlink()  # else it would use that
    with pytest.raises(UserError, match="no intact checkpoint.*damaged files, left where they"):
        load_generator(tmp_path)
    with pytest.raises(UserError, match="no intact checkpoint.*damaged files, set aside in"):
        train(smoke(epochs=2), tmp_path, data=tiny, quiet=True)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny):
    from gan_mnist.guards import TrainingDiverged

    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    good = (tmp_path / "training_checkpoints" / "checkpoint").read_bytes()
    image = artifacts.epoch_image_path(tmp_path, 1).read_bytes()
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 2, step \d+.*ckpt-8"):
        train(smoke(epochs=3, gen_lr=1e12, disc_lr=1e12), tmp_path, data=tiny, quiet=True)
    assert (tmp_path / "training_checkpoints" / "checkpoint").read_bytes() == good
    assert artifacts.epoch_image_path(tmp_path, 1).read_bytes() == image
    assert not artifacts.epoch_image_path(tmp_path, 2).exists()
    assert [r["epoch"] for r in history_rows(tmp_path)] == ["1"]

    resumed = train(smoke(epochs=2), tmp_path, data=tiny, quiet=True)  # saner settings
    assert (resumed.first_epoch, resumed.last_epoch) == (2, 2)
    assert np.isfinite(float(history_rows(tmp_path)[1]["d_loss"]))


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path, tiny):
    from gan_mnist.guards import run_lock

    with run_lock(tmp_path):
        with pytest.raises(UserError, match=r"being written by another .* \(process \d+\)"):
            train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)
    train(smoke(epochs=1), tmp_path, data=tiny, quiet=True)  # released: accepted


def test_checkpoint_minutes_saves_mid_epoch(tmp_path, tiny):
    config = smoke(epochs=1, checkpoint_minutes=1e-9)  # due after every step
    train(config, tmp_path, data=tiny, quiet=True)
    kept = sorted(p.name for p in (tmp_path / "training_checkpoints").glob("ckpt-*.index"))
    assert kept == ["ckpt-6.index", "ckpt-7.index", "ckpt-8.index"]  # max_to_keep=3


def test_same_seed_gives_identical_images_and_losses(tmp_path, tiny):
    for name in ("a", "b"):
        train(smoke(epochs=2), tmp_path / name, data=tiny, quiet=True)
    for epoch in (1, 2):
        a, b = (artifacts.epoch_image_path(tmp_path / d, epoch).read_bytes() for d in "ab")
        assert a == b
    losses = [[(r["d_loss"], r["g_loss"]) for r in history_rows(tmp_path / d)] for d in "ab"]
    assert losses[0] == losses[1]


def test_a_run_interrupted_and_resumed_matches_one_that_was_not(tmp_path, tiny, monkeypatch):
    from gan_mnist import guards

    train(smoke(epochs=2), tmp_path / "straight", data=tiny, quiet=True)
    # Ctrl-C, through the real signal handler, during step 11 (epoch 2 of 8-step epochs).
    monkeypatch.setattr(guards, "_FAULT_COUNTS", {})
    monkeypatch.setenv("GAN_MNIST_FAULT", "step@11:SIGINT")
    # train checkpoints, then raises, so a notebook's "Run all" stops at this cell.
    with pytest.raises(KeyboardInterrupt) as interrupted:
        train(smoke(epochs=2), tmp_path / "resumed", data=tiny, quiet=True)
    stopped = interrupted.value.summary
    assert (stopped.stopped_by, stopped.exit_status, stopped.last_epoch) == ("SIGINT", 130, 1)
    assert (tmp_path / "resumed" / "training_checkpoints" / "checkpoint").exists()
    monkeypatch.delenv("GAN_MNIST_FAULT")
    train(smoke(epochs=2), tmp_path / "resumed", data=tiny, quiet=True)

    straight, resumed = (history_rows(tmp_path / d) for d in ("straight", "resumed"))
    for a, b in zip(straight, resumed, strict=True):
        # Bit for bit: the epoch's order, the noise generator, the dropout streams and
        # the partial epoch's loss sums all come back from the checkpoint.
        assert (a["d_loss"], a["g_loss"]) == (b["d_loss"], b["g_loss"])
    final = [
        artifacts.epoch_image_path(tmp_path / d, 2).read_bytes() for d in ("straight", "resumed")
    ]
    assert final[0] == final[1]


def test_user_built_networks_are_fingerprinted_and_a_swap_is_refused(tmp_path, tiny):
    from gan_mnist.models import build_models

    config = smoke(epochs=1)
    first = build_models(config)
    train(config, tmp_path, data=tiny, quiet=True, models=first)
    assert json.loads((tmp_path / "config.json").read_text())["architecture"]

    wider = build_models(smoke(base_filters=12))  # other networks, same settings
    with pytest.raises(UserError, match="architecture .* -> .*OUTPUT_DIR = None"):
        train(smoke(epochs=2), tmp_path, data=tiny, quiet=True, models=wider)
    resumed = train(smoke(epochs=2), tmp_path, data=tiny, quiet=True, models=build_models(config))
    assert (resumed.first_epoch, resumed.last_epoch) == (2, 2)
    models, _, source = load_generator(tmp_path)  # from generator.keras, not the family's
    assert source.endswith("generator.keras")


def test_a_float16_first_step_skipped_for_an_overflow_leaves_the_average_finite(tmp_path, tiny):
    # Adam does not count a step that LossScaleOptimizer skips, so the average must count
    # batches: with Adam's 0 at the first step, its decay would be -inf.
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.state import adam_of
    from gan_mnist.step import compile_step

    state = TrainingState(smoke(ema=0.9, epochs=1, mixed_precision="float16"), tmp_path)
    state.generator_optimizer.dynamic_scale.assign(1e38)  # float16 gradients overflow
    run_steps = compile_step(state)
    run_steps(iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=7)), 1)
    assert int(adam_of(state.generator_optimizer).iterations.numpy()) == 0  # skipped
    for average, trained in zip(
        state.average_generator.weights, state.models.generator.weights, strict=True
    ):
        np.testing.assert_array_equal(average.numpy(), trained.numpy())  # d = 0 at t = 1


def test_the_averaged_generator_follows_its_formula_and_draws_previews_and_samples(tmp_path, tiny):
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.records import preview_images
    from gan_mnist.step import compile_step

    config = smoke(ema=0.9, epochs=1)
    state = TrainingState(config, tmp_path / "by_hand")
    run_steps = compile_step(state)
    batches = iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=7))
    for t in (1, 2, 10):  # t: the generator's step count after the step
        before = [w.numpy() for w in state.average_generator.weights]
        run_steps(batches, 1 if t < 10 else 8)
        if t == 10:
            break
        decay = 0.9 * (1 - 0.9 ** (t - 1)) / (1 - 0.9**t)  # bias-corrected: 0 at t = 1
        for old, new, avg in zip(
            before, state.models.generator.weights, state.average_generator.weights, strict=True
        ):
            np.testing.assert_allclose(
                avg.numpy(), decay * old + (1 - decay) * new.numpy(), atol=1e-6
            )
    raw, average = state.models.generator.weights[0], state.average_generator.weights[0]
    assert not np.allclose(raw.numpy(), average.numpy())  # 10 steps in: they differ
    noise, _ = state.models.preview_latents(state.fixed_noise)
    shown = state.models.to_uint8(state.average_generator(noise, training=False))
    np.testing.assert_array_equal(preview_images(state), shown)

    # A run: the checkpoint keeps the average, and sampling and generator.keras use it.
    train(config, tmp_path / "run", data=tiny, quiet=True)
    restored = TrainingState(config, tmp_path / "run")
    restored.restore()
    models, _, _ = load_generator(tmp_path / "run")
    for mine, loaded in zip(
        restored.average_generator.weights, models.generator.weights, strict=True
    ):
        np.testing.assert_array_equal(mine.numpy(), loaded.numpy())
    saved, _, _ = load_generator_file(tmp_path / "run" / "generator.keras")
    np.testing.assert_array_equal(
        generate_images(saved, 8, seed=1), generate_images(models, 8, seed=1)
    )


def test_progress_goes_to_log_lines_where_no_one_watches(monkeypatch, tmp_path, tiny, capsys):
    from gan_mnist import records

    assert records.progress_mode(progress="none") == "none"
    assert records.progress_mode(quiet=True) == "lines"
    assert records.progress_mode() == "lines"  # pytest's captured stdout is no terminal
    with pytest.raises(UserError, match="bar, lines, none"):
        records.progress_mode(progress="fancy")
    # "lines": within an epoch, a line at most every LINE_SECONDS (0 here: at each read).
    monkeypatch.setattr(records, "LINE_SECONDS", 0.0)
    monkeypatch.setattr(records, "PROGRESS_SECONDS", 0.0)
    train(smoke(epochs=1), tmp_path, data=tiny)
    printed = capsys.readouterr().out
    within = [line for line in printed.splitlines() if line.startswith("  epoch 1: step ")]
    assert within and within[0].startswith("  epoch 1: step 1/8  d_loss ")
    assert "\r" not in printed and len(within) == 7  # steps 1..7; step 8 is the epoch's line


def test_several_steps_per_call_trace_one_graph_for_any_count(tmp_path, tiny):
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.step import compile_step

    state = TrainingState(smoke(epochs=1), tmp_path)
    run_steps = compile_step(state)
    batches = iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=7).repeat())
    for n in (2, 3, 5):  # an epoch's last call and a resume's offset give other counts
        run_steps(batches, n)
    assert int(state.step_in_epoch.numpy()) == 10
    assert run_steps.graphs() == 1


def test_a_worker_that_is_not_the_chief_writes_only_its_checkpoints(tmp_path, tiny, monkeypatch):
    import dataclasses
    import shutil

    from gan_mnist import training

    config = smoke(epochs=2, eval_every=1, eval_samples=8, save_generator_every=1)
    monkeypatch.setattr(
        training, "runtime", lambda c: dataclasses.replace(runtime(c), is_chief=False)
    )
    scratch_files = []
    real_rmtree = shutil.rmtree

    def look_then_remove(path, **kwargs):  # the worker's scratch, just before it goes
        scratch_files.extend(p.relative_to(path).parts[0] for p in Path(path).rglob("*"))
        real_rmtree(path, **kwargs)

    monkeypatch.setattr(training.shutil, "rmtree", look_then_remove)
    shared = tmp_path / "shared"
    train(config, shared, data=tiny, quiet=True)

    assert not shared.exists()  # the run's folder is the chief's to make and write
    assert set(scratch_files) == {"training_checkpoints"}


def test_lr_decay_linear_sets_both_rates_from_the_runs_step_count_also_after_a_resume(
    tmp_path, tiny
):
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.state import adam_of
    from gan_mnist.step import compile_step

    def rates(state):
        return [
            float(adam_of(o).learning_rate.numpy())
            for o in (state.generator_optimizer, state.discriminator_optimizer)
        ]

    config = smoke(lr_decay="linear", epochs=1, gen_lr=2e-4, disc_lr=1e-4)
    state = TrainingState(config, tmp_path / "by_hand")
    run_steps = compile_step(state, steps_per_epoch=8)  # the line ends after step 8
    batches = iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=7))
    run_steps(batches, 1)
    np.testing.assert_allclose(rates(state), [2e-4, 1e-4], rtol=1e-6)  # full at step 1
    run_steps(batches, 5)  # steps 2 to 6 (one compiled loop): step 6 had 1 - 5/8
    np.testing.assert_allclose(rates(state), [2e-4 * 3 / 8, 1e-4 * 3 / 8], rtol=1e-5)

    # Through train(): the smoke preset's 256 images, batch 32, 8 steps an epoch. Resumed
    # to two epochs, the last step (the 16th) had 1 - 15/16; resumed with batch 16 (16
    # steps an epoch, in the new units one epoch of 16 is done), its last had 1 - 31/32.
    def saved_rates(run):
        saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(run / "training_checkpoints"))
        return [
            float(saved.get_tensor(f"{net}_optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"))
            for net in ("generator", "discriminator")
        ]

    for batch, left in ((32, 1 / 16), (16, 1 / 32)):
        run = tmp_path / f"run-{batch}"
        train(config, run, data=tiny, quiet=True)
        np.testing.assert_allclose(saved_rates(run), [2e-4 / 8, 1e-4 / 8], rtol=1e-5)
        longer = smoke(lr_decay="linear", epochs=2, gen_lr=2e-4, disc_lr=1e-4, batch_size=batch)
        train(longer, run, data=tiny, quiet=True)
        np.testing.assert_allclose(saved_rates(run), [2e-4 * left, 1e-4 * left], rtol=1e-5)

    off = TrainingState(smoke(epochs=1, gen_lr=2e-4, disc_lr=1e-4), tmp_path / "off")
    compile_step(off, steps_per_epoch=8)(
        iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=7)), 3
    )
    assert rates(off) == pytest.approx([2e-4, 1e-4])
