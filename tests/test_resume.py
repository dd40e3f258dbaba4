"""A run continues from its own settings, and `train` never writes over what it did
not make: resuming without the preset, changed and fixed flags, a folder of someone
else's files, no --out, a batch size changed mid-epoch, end-of-run files left stale."""

import csv
import json
import zipfile

import pytest

from gan_mnist.config import saved_config
from gan_mnist.state import TrainingState
from tests.conftest import run_cli


def smoke(data, out, *extra):
    return run_cli("train", "--preset", "smoke", "--data", data, "--out", out, *extra)


def test_a_run_continues_with_its_own_settings_and_flags_change_the_rest(tmp_path, tiny_npz):
    out = tmp_path / "r"
    first = smoke(tiny_npz, out, "--epochs", 1, "--gen-lr", "0.0003", "--seed", 5)
    assert first.returncode == 0, first.stderr

    # No --preset: the smoke run goes on as a smoke run (not the default tutorial's).
    second = run_cli("train", "--out", out, "--epochs", 2, "--disc-lr", "0.0005")
    assert second.returncode == 0, second.stderr
    assert "resuming from the checkpoint of epoch 1" in second.stdout
    assert "changed for the rest of this run: --disc-lr 0.0001 -> 0.0005" in second.stdout
    saved = json.loads((out / "config.json").read_text())
    assert (saved["base_filters"], saved["gen_lr"], saved["disc_lr"]) == (8, 0.0003, 0.0005)
    assert (saved["epochs"], saved["seed"]) == (2, 5)

    fixed = run_cli("train", "--out", out, "--epochs", 3, "--base-filters", 16)
    assert fixed.returncode == 2 and "--base-filters 8 -> 16" in fixed.stderr
    assert json.loads((out / "config.json").read_text()) == saved  # nothing rewritten
    # The checkpoint holds the preview noise (its shape) and, for a rate above 0,
    # Dropout's seed state: both are refused by name, not as "other settings".
    for flag, value, change in [
        ("--num-examples", 9, "--num-examples 16 -> 9"),
        ("--dropout", 0.5, "--dropout 0.3 -> 0.5"),
    ]:
        refused = run_cli("train", "--out", out, "--epochs", 3, flag, value)
        assert refused.returncode == 2 and change in refused.stderr, refused.stderr

    # A preset names settings for new runs: given again, it is noted, not applied.
    noted = run_cli("train", "--out", out, "--epochs", 2, "--preset", "demo")
    assert noted.returncode == 0 and "nothing to do" in noted.stdout
    assert "--preset demo (for new runs) differs in" in noted.stdout
    assert "--base-filters" in noted.stdout
    assert json.loads((out / "config.json").read_text())["base_filters"] == 8


def test_a_run_of_any_family_continues_without_its_preset(tmp_path, tiny_npz):
    # `--preset tutorial`, the default, was never measured with cdcgan: a new run is
    # refused that pair, but a run of demo's cdcgan continues without naming its preset.
    out = tmp_path / "c"
    first = run_cli(
        "train", "--preset", "demo", "--model", "cdcgan", "--limit", 64, "--epochs", 1,
        "--data", tiny_npz, "--out", out, "--seed", 1, "--quiet",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    for extra in ((), ("--model", "cdcgan"), ("--preset", "fast")):
        again = run_cli("train", "--out", out, "--epochs", 1, *extra)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    assert "--preset fast (for new runs) differs" in again.stdout
    assert run_cli("train", "--model", "cdcgan", "--data", tiny_npz).returncode == 2


def test_a_new_run_never_writes_into_a_folder_of_other_files(tmp_path, tiny_npz):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    refused = smoke(tiny_npz, mine, "--epochs", 1)
    assert refused.returncode == 2, refused.stderr
    assert "holds other files (notes.txt) and no run of ours" in refused.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    # Without --out, in a clone's root with its committed pictures: a new folder in runs/.
    clone = tmp_path / "clone"
    (clone / "DCGAN_Images").mkdir(parents=True)
    committed = clone / "DCGAN_Images" / "image_at_epoch_0002.png"
    committed.write_bytes(b"a committed picture")
    args = ["train", "--preset", "smoke", "--epochs", 1, "--data", tiny_npz, "--seed", 1]
    made = run_cli(*args, cwd=clone)
    assert made.returncode == 0, made.stderr
    (run,) = (clone / "runs").iterdir()
    assert f"no --out given: a new run in runs/{run.name}" in made.stdout
    assert run.name.startswith("dcgan-mnist-f8-b32-seed1-")
    assert committed.read_bytes() == b"a committed picture"
    assert sorted(p.name for p in clone.iterdir()) == ["DCGAN_Images", "runs"]
    # The same command again finds its run and resumes it; runs/ itself is fine too.
    again = run_cli(*args[:4], 2, *args[5:], cwd=clone)
    assert again.returncode == 0 and "resuming from the checkpoint of epoch 1" in again.stdout
    assert "note:" not in again.stdout  # its own preset: nothing to say
    # runs/ itself holds runs, and is not one: refused, and nothing is written there
    # (no lock file, and no clean-up that would reach into the runs inside it).
    before = sorted(p.relative_to(clone) for p in (clone / "runs").rglob("*"))
    into_runs = smoke(tiny_npz, clone / "runs", "--epochs", 1)
    assert into_runs.returncode == 2 and "holds other runs" in into_runs.stderr
    assert sorted(p.relative_to(clone) for p in (clone / "runs").rglob("*")) == before


def test_a_batch_size_changed_mid_epoch_starts_that_epoch_again(tmp_path, tiny_npz):
    out = tmp_path / "r"
    stopped = run_cli(
        "train",
        "--preset",
        "smoke",
        "--data",
        tiny_npz,
        "--out",
        out,
        "--epochs",
        1,
        "--batch-size",
        8,
        "--seed",
        2,
        env={"GAN_MNIST_FAULT": "step@5:SIGINT"},
    )
    assert stopped.returncode == 130, stopped.stderr
    assert "checkpointed at epoch 0 and 5 steps of the next" in stopped.stdout

    resumed = run_cli("train", "--out", out, "--batch-size", 64)
    assert resumed.returncode == 0, resumed.stderr
    assert "in the middle of epoch 1: that epoch starts again" in resumed.stdout
    with open(out / "history.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    # The whole epoch again: smoke's 256 images in 4 batches of 64 (none skipped for
    # the 5 batches of 8 done before), recorded once, and the checkpoint after it.
    assert round(float(row["images_per_sec"]) * float(row["seconds"])) == 256
    state = TrainingState(saved_config(out), out)
    assert state.restore() == (1, 0) and state.global_step == 5 + 4


def test_end_of_run_files_left_stale_by_a_kill_are_rewritten(tmp_path, tiny_npz):
    out = tmp_path / "r"
    assert smoke(tiny_npz, out, "--epochs", 2, "--seed", 3).returncode == 0
    # Killed after the final checkpoint of epoch 3, while rebuilding the end-of-run
    # files: the GIF is new, the montage and ZIP still show 2 epochs.
    killed = run_cli("train", "--out", out, "--epochs", 3, env={"GAN_MNIST_FAULT": "summaries"})
    assert killed.returncode == -9
    with zipfile.ZipFile(out / "dcgan_images.zip") as archive:
        assert len(archive.namelist()) == 2

    rerun = run_cli("train", "--out", out, "--epochs", 3)
    assert rerun.returncode == 0 and "nothing to do" in rerun.stdout
    with zipfile.ZipFile(out / "dcgan_images.zip") as archive:
        assert len(archive.namelist()) == 3


def test_a_checkpoint_without_the_generator_the_config_names_is_refused_not_random(
    tmp_path, tiny_npz
):
    out = tmp_path / "r"
    assert smoke(tiny_npz, out, "--epochs", 1, "--seed", 4).returncode == 0  # no --ema
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "ema": 0.5}))
    result = run_cli("sample", out, "--out", tmp_path / "s.npz")
    assert result.returncode == 2, result.stderr
    assert "does not hold the average generator" in result.stderr
    assert not (tmp_path / "s.npz").exists()


def test_checkpoints_are_numbered_by_batches_and_hold_the_seed_and_loss_scale(tmp_path, tiny_npz):
    from gan_mnist.config import make_config
    from gan_mnist.data import load_mnist
    from gan_mnist.errors import UserError
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.state import TrainingState, adam_of
    from gan_mnist.step import compile_step

    config = make_config("smoke", seed=4, mixed_precision="float16")
    state = TrainingState(config, tmp_path)
    run_steps = compile_step(state)
    tiny = load_mnist(tiny_npz)
    batches = iter(make_dataset(tiny.x_train, tiny.y_train, 32, seed=4))
    for _ in range(3):
        run_steps(batches, 1)
    # A float16 step skipped for an overflow does not count in Adam: 3 batches, 2 updates.
    adam_of(state.generator_optimizer).iterations.assign(2)
    state.generator_optimizer.dynamic_scale.assign(1024.0)
    first = state.save()
    assert first.endswith("ckpt-3")
    written = (tmp_path / "training_checkpoints" / "ckpt-3.index").stat().st_mtime_ns
    assert state.save() == first  # nothing trained since: the newest is not rewritten
    assert (tmp_path / "training_checkpoints" / "ckpt-3.index").stat().st_mtime_ns == written

    resumed = TrainingState(config, tmp_path)
    resumed.restore()
    assert resumed.global_step == 3
    assert float(resumed.generator_optimizer.dynamic_scale.numpy()) == 1024.0

    # config.json lost: a run with another seed is told the checkpoint's.
    with pytest.raises(UserError, match="trained with --seed 4, but this run has seed 5"):
        TrainingState(make_config("smoke", seed=5, mixed_precision="float16"), tmp_path).restore()


def test_a_checkpoint_that_cannot_be_read_is_said_and_nothing_is_moved(
    tmp_path, smoke_runs, tiny_npz
):
    from tests.conftest import copy_run

    out = copy_run(smoke_runs["dcgan"], tmp_path)
    (data_file,) = (out / "training_checkpoints").glob("ckpt-16.data-*")
    # A read that fails as a disk or a permission would (EISDIR here: the tests run as
    # root, whom permissions do not stop), with nothing wrong in the files themselves.
    data_file.unlink()
    data_file.mkdir()

    def files():
        return sorted(p.relative_to(out) for p in out.rglob("*") if ".lock" not in p.name)

    before = files()
    for command in (
        ("train", "--out", out, "--epochs", 3),
        ("sample", out, "--n", 4, "--out", tmp_path / "s.npz"),
    ):
        refused = run_cli(*command)
        assert refused.returncode == 2, refused.stdout
        assert "could not be read" in refused.stderr and "Is a directory" in refused.stderr
        assert "not damage" in refused.stderr and "nothing was moved" in refused.stderr
        assert "other settings" not in refused.stderr and "Traceback" not in refused.stderr
        assert files() == before  # no damaged/ folder, no checkpoint set aside
