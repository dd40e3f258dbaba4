"""The `gan-mnist` command as a user runs it: separate processes, real files."""

import json
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import run_cli, smoke_train_args


def test_help_is_the_manual():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for text in (
        "--preset {tutorial,demo,smoke}",
        "--epochs N",
        "--checkpoint-every K",
        "--save-generator-every K",
        "--limit N",
        "--data PATH",
        "--seed S",
        "--quiet",
        "resuming:",
        "dcgan_animation.gif",
    ):
        assert text in result.stdout, text
    assert "--n N" in run_cli("sample", "--help").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "--epochs must be a positive whole number"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--preset", "fast"], "invalid choice: 'fast'"),
        (["train", "--epochs", "two"], "invalid int value: 'two'"),
        (["sample", "nowhere", "--out", "s.npz"], "nowhere is not a folder"),
        (["sample", ".", "--n", "0", "--out", "s.npz"], "--n must be a positive"),
        (["sample", ".", "--out", "s.txt"], "must end in .npz"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_sample_without_a_checkpoint_is_refused(tmp_path):
    result = run_cli("sample", tmp_path, "--out", tmp_path / "s.npz")
    assert result.returncode == 2 and "no checkpoint" in result.stderr
    assert not (tmp_path / "s.npz").exists()


def test_train_into_an_unwritable_folder_is_refused(tmp_path, tiny_npz):
    (tmp_path / "file").write_text("")
    result = run_cli(
        "train", "--preset", "smoke", "--data", tiny_npz, "--out", tmp_path / "file" / "run"
    )
    assert result.returncode == 2 and "cannot write to the output folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_data_file_is_refused(tmp_path):
    (tmp_path / "x.npz").write_text("junk")
    result = run_cli(
        "train", "--preset", "smoke", "--data", tmp_path / "x.npz", "--out", tmp_path / "run"
    )
    assert result.returncode == 2 and "not a readable Keras-format mnist.npz" in result.stderr


def test_train_twice_resumes_then_sample(tmp_path, tiny_npz):
    """The issue's walkthrough: 2 epochs, then to 3, then 64 samples."""
    out = tmp_path / "T"
    first = run_cli(*smoke_train_args(tiny_npz, out, epochs=2, seed=3))
    assert first.returncode == 0, first.stderr
    assert "seed: 3" in first.stdout
    images = out / "DCGAN_Images"
    epoch_1_2 = [(images / f"image_at_epoch_000{e}.png").read_bytes() for e in (1, 2)]

    second = run_cli(*smoke_train_args(tiny_npz, out, epochs=3))
    assert second.returncode == 0, second.stderr
    assert "resuming from the checkpoint of epoch 2" in second.stdout
    assert "seed: 3" in second.stdout  # the saved seed carries over
    assert sorted(p.name for p in images.iterdir()) == [
        f"image_at_epoch_000{e}.png" for e in (1, 2, 3)
    ]
    assert [(images / f"image_at_epoch_000{e}.png").read_bytes() for e in (1, 2)] == epoch_1_2

    assert iio.imread(out / "dcgan_animation.gif", index=None).shape[0] == 3
    with zipfile.ZipFile(out / "dcgan_images.zip") as z:
        assert len(z.namelist()) == 3

    third = run_cli(
        "sample",
        out,
        "--n",
        64,
        "--out",
        tmp_path / "s.npz",
        "--grid",
        tmp_path / "s.png",
        "--seed",
        1,
    )
    assert third.returncode == 0, third.stderr
    with np.load(tmp_path / "s.npz") as f:
        samples = f["images"]
    assert samples.shape == (64, 28, 28) and samples.dtype == np.uint8
    assert (tmp_path / "s.png").exists()


def test_evaluate_prints_both_columns_and_writes_metrics_json(tmp_path, tiny_npz):
    out = tmp_path / "run"
    assert run_cli(*smoke_train_args(tiny_npz, out, epochs=1, seed=2)).returncode == 0

    result = run_cli("evaluate", out, "--n", 100, "--data", tiny_npz)

    assert result.returncode == 0, result.stderr
    assert "Fréchet distance (MNIST classifier features)" in result.stdout
    assert "real data" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 100
    assert set(metrics) >= {"generated", "real_data_ceiling"}
    assert (
        metrics["generated"]["frechet_distance"] > metrics["real_data_ceiling"]["frechet_distance"]
    )
    as_json = run_cli("evaluate", out, "--n", 100, "--data", tiny_npz, "--json")
    assert json.loads(as_json.stdout)["generated"]["n"] == 100
    too_many = run_cli("evaluate", out, "--n", 5000, "--data", tiny_npz)
    assert too_many.returncode == 2 and "more than the 320 real training images" in too_many.stderr
