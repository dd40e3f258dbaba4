"""The training loop in-process on tiny data: artifacts, resume, refusals."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from gan_mnist import artifacts
from gan_mnist.checkpoints import TrainingState, load_generator
from gan_mnist.config import make_config
from gan_mnist.data import load_mnist
from gan_mnist.errors import UserError
from gan_mnist.sampling import generate_images
from gan_mnist.training import train


@pytest.fixture(scope="module")
def tiny(tiny_npz):
    return load_mnist(tiny_npz)


def smoke(**overrides):
    return make_config("smoke", seed=7, **overrides)


def history_rows(out_dir):
    with open(out_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_writes_every_artifact(tmp_path, tiny):
    summary = train(smoke(epochs=2, save_generator_every=1), tmp_path, mnist=tiny, quiet=True)

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
    train(smoke(epochs=2), tmp_path, mnist=tiny, quiet=True)
    first_images = {e: artifacts.epoch_image_path(tmp_path, e).read_bytes() for e in (1, 2)}

    summary = train(smoke(epochs=3), tmp_path, mnist=tiny, quiet=True)

    assert (summary.first_epoch, summary.last_epoch) == (3, 3)
    for epoch, content in first_images.items():
        assert artifacts.epoch_image_path(tmp_path, epoch).read_bytes() == content
    assert [e for e, _ in artifacts.epoch_images(tmp_path)] == [1, 2, 3]
    assert [r["epoch"] for r in history_rows(tmp_path)] == ["1", "2", "3"]


def test_optimizer_state_and_epoch_survive_a_checkpoint(tmp_path, tiny):
    config = smoke(epochs=2)
    train(config, tmp_path, mnist=tiny, quiet=True)
    state = TrainingState(config, tmp_path)
    assert int(state.generator_optimizer.iterations.numpy()) == 0

    assert state.restore() == 2
    steps = 2 * (256 // 32)  # smoke: 256 images, batch 32, two epochs
    assert int(state.generator_optimizer.iterations.numpy()) == steps
    assert int(state.discriminator_optimizer.iterations.numpy()) == steps
    moments = [v for v in state.generator_optimizer.variables if "momentum" in v.path]
    assert moments and all(float(tf.reduce_sum(tf.abs(v))) > 0 for v in moments)


def test_finished_run_does_nothing(tmp_path, tiny, capsys):
    train(smoke(epochs=1), tmp_path, mnist=tiny, quiet=True)
    before = (tmp_path / "history.csv").read_bytes()
    summary = train(smoke(epochs=1), tmp_path, mnist=tiny, quiet=True)
    assert summary.last_epoch == 1 and "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "history.csv").read_bytes() == before


def test_architecture_change_against_a_checkpoint_is_refused(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, mnist=tiny, quiet=True)
    with pytest.raises(UserError, match="--base-filters 8 -> 16"):
        train(smoke(epochs=2, base_filters=16), tmp_path, mnist=tiny, quiet=True)


def test_batch_larger_than_the_data_is_refused(tmp_path, tiny):
    with pytest.raises(UserError, match="--batch-size 512 is larger than the 256"):
        train(smoke(batch_size=512), tmp_path, mnist=tiny, quiet=True)


def test_unwritable_output_folder_is_refused(tmp_path, tiny):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write to the output folder"):
        train(smoke(), blocker / "run", mnist=tiny, quiet=True)


def test_epoch_callback_and_seeded_repeatability(tmp_path, tiny):
    seen = []
    train(
        smoke(epochs=1),
        tmp_path / "a",
        mnist=tiny,
        quiet=True,
        on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["image_path"].name)),
    )
    train(smoke(epochs=1), tmp_path / "b", mnist=tiny, quiet=True)
    assert seen == [(1, "image_at_epoch_0001.png")]
    a, b = (artifacts.epoch_image_path(tmp_path / d, 1).read_bytes() for d in "ab")
    assert a == b  # same seed, same machine: the same first epoch


def test_sampling_from_checkpoint_and_from_saved_generator(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, mnist=tiny, quiet=True)
    models, config, source = load_generator(tmp_path)
    assert "ckpt-1" in source and config.seed == 7
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
    train(smoke(epochs=2, eval_every=1, eval_samples=64), tmp_path, mnist=tiny, quiet=True)

    rows = history_rows(tmp_path)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    distances = [float(r["frechet_distance"]) for r in rows]
    assert all(d > 0 for d in distances)
    assert all(0 <= int(r["digits_covered"]) <= 10 for r in rows)
    assert (tmp_path / "generator_best.keras").exists()
    assert "FD " in capsys.readouterr().out

    # Resumed without evaluation: the metric columns stay, the new row leaves them empty.
    train(smoke(epochs=3), tmp_path, mnist=tiny, quiet=True)
    rows = history_rows(tmp_path)
    assert rows[2]["epoch"] == "3" and rows[2]["frechet_distance"] == ""
    assert rows[0]["frechet_distance"] != ""


def test_max_minutes_stops_early_with_a_checkpoint_and_resumes(tmp_path, tiny, capsys):
    summary = train(smoke(epochs=50), tmp_path, mnist=tiny, quiet=True, max_minutes=0.001)

    assert summary.stopped_by_time and summary.last_epoch == 1
    assert 0 < summary.images_trained < 256  # cut inside the first epoch
    assert "run again to continue" in capsys.readouterr().out
    for name in ("generator.keras", "dcgan_animation.gif", "DCGAN_Images/image_at_epoch_0001.png"):
        assert (tmp_path / name).exists(), name
    resumed = train(smoke(epochs=2), tmp_path, mnist=tiny, quiet=True)
    assert (resumed.first_epoch, resumed.last_epoch) == (2, 2)


def test_damaged_checkpoint_is_a_clear_error(tmp_path, tiny):
    train(smoke(epochs=1), tmp_path, mnist=tiny, quiet=True)
    (data_file,) = (tmp_path / "training_checkpoints").glob("ckpt-1.data-*")
    data_file.write_bytes(data_file.read_bytes()[:100])  # as if the disk lost the rest
    with pytest.raises(UserError, match="could not be restored.*damaged"):
        train(smoke(epochs=2), tmp_path, mnist=tiny, quiet=True)
