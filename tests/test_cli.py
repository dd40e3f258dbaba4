"""The `gan-mnist` command as a user runs it: separate processes, real files."""

import json
import os
import re
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import copy_run, run_cli, smoke_train_args


def test_the_tests_runner_gives_what_a_fresh_process_gives(tmp_path):
    """`run_cli` forks tests/cli_server.py (TensorFlow imported once) instead of
    starting Python: the exit status, both streams, the working folder and the
    environment must be those of a fresh `python -m gan_mnist`."""
    here = tmp_path / "here"
    (here / "empty").mkdir(parents=True)
    cases = [
        ["train", "--preset", "nope"],  # argparse's usage error (SystemExit)
        ["sample", "empty", "--out", "s.npz"],  # a folder found in the working folder
    ]
    env = {"GAN_MNIST_CACHE": str(tmp_path / "cache"), "COLUMNS": "61"}
    for args in cases:
        served = run_cli(*args, cwd=here, env=env)
        fresh = run_cli(*args, cwd=here, env=env, fresh=True)
        assert served.returncode == 2, served.stderr
        assert (served.returncode, served.stdout, served.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        ), args
    assert "empty holds no checkpoint" in served.stderr  # found in the working folder
    assert sorted(p.name for p in here.iterdir()) == ["empty"]


def test_help_is_the_manual():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for text in (
        "--preset {tutorial,demo,fast,smoke}",
        "--model {dcgan,cdcgan,infogan-nets,mlp}",
        "--dataset {mnist,fashion_mnist,images}",
        "--loss {nonsaturating,hinge,least_squares}",
        "--epochs N",
        "--checkpoint-every K",
        "--save-generator-every K",
        "--limit N",
        "--data PATH",
        "--seed S",
        "--quiet",
        "--progress {bar,lines,none}",
        "resuming:",
        "dcgan_animation.gif",
    ):
        assert text in result.stdout, text
    assert "--n N" in run_cli("sample", "--help").stdout
    assert "--class NAME, --digit NAME" in run_cli("sample", "--help").stdout
    assert "--walk {noise,classes}" in run_cli("interpolate", "--help").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "--epochs must be a positive whole number"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--preset", "quick"], "invalid choice: 'quick'"),
        (["train", "--epochs", "two"], "invalid int value: 'two'"),
        (["sample", "nowhere", "--out", "s.npz"], "nowhere is not a folder"),
        (["sample", ".", "--n", "0", "--out", "s.npz"], "--n must be a positive"),
        (["sample", ".", "--out", "s.txt"], "must end in .npz"),
        (["sample", ".", "--n", "10000000000000", "--out", "s.npz"], "more than the"),
        (["interpolate", ".", "--out", "w.png"], "must end in .gif"),
        (["interpolate", ".", "--out", "w.gif", "--points", "1"], "at least 2"),
        (["train", "--model", "gan"], "invalid choice: 'gan'"),
        (["evaluate", ".", "--n", "3"], "--n must be at least 4 (precision"),
        (["interpolate", ".", "--out", "w.gif", "--walk", "classes", "--digit", "3"], "apply"),
        (["interpolate", ".", "--out", "w.gif", "--walk", "classes", "--points", "6"], "apply"),
        (["train", "--eval-samples", "3"], "--eval-samples must be at least 4"),
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


def test_evaluate_prints_both_columns_and_writes_metrics_json(tmp_path, tiny_npz, smoke_runs):
    out = copy_run(smoke_runs["dcgan"], tmp_path)  # evaluate writes metrics.json into it

    result = run_cli("evaluate", out, "--n", 100, "--data", tiny_npz)

    assert result.returncode == 0, result.stderr
    assert "Fréchet distance (classifier features)" in result.stdout
    assert "real data" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 100
    assert set(metrics) >= {"generated", "real_data_ceiling"}
    assert (
        metrics["generated"]["frechet_distance"] > metrics["real_data_ceiling"]["frechet_distance"]
    )
    as_json = run_cli("evaluate", out, "--n", 100, "--data", tiny_npz, "--json")
    assert json.loads(as_json.stdout)["generated"]["n"] == 100
    fewest = run_cli("evaluate", out, "--n", 4, "--data", tiny_npz, "--json")
    assert fewest.returncode == 0, fewest.stderr  # 4 points: each has 3 neighbours
    assert json.loads(fewest.stdout)["generated"]["n"] == 4
    too_many = run_cli("evaluate", out, "--n", 5000, "--data", tiny_npz)
    assert too_many.returncode == 2 and "more than the 320 real training images" in too_many.stderr


def test_conditional_run_samples_a_chosen_digit_and_walks_through_classes(
    tmp_path, tiny_npz, smoke_runs, trained_cdcgan, real_data_cache
):
    out = copy_run(smoke_runs["cdcgan"], tmp_path)  # evaluate writes metrics.json into it

    sevens = run_cli(
        "sample",
        out,
        "--digit",
        "7",
        "--n",
        150,
        "--out",
        tmp_path / "7.npz",
        "--grid",
        tmp_path / "7.png",
        "--seed",
        2,
    )
    assert sevens.returncode == 0, sevens.stderr
    assert "150 images of class '7'" in sevens.stdout and "the first 100" in sevens.stdout
    with np.load(tmp_path / "7.npz") as f:
        assert f["images"].shape == (150, 28, 28) and f["labels"].tolist() == [7] * 150
    # --grid shows at most 100 images: 10 x 10 tiles of 30 px, 4x scaled.
    assert iio.imread(tmp_path / "7.png").shape[:2] == ((10 * 30 + 2) * 4, (10 * 30 + 2) * 4)

    for extra in ([], ["--walk", "classes"], ["--digit", "3"]):
        gif = tmp_path / f"walk{len(extra)}.gif"
        walk = run_cli("interpolate", out, "--out", gif, "--steps", 3, *extra)
        assert walk.returncode == 0, walk.stderr
        assert iio.imread(gif, index=None).shape[0] == (30 if extra[:1] == ["--walk"] else 12)

    bad = run_cli("sample", out, "--digit", "12", "--out", tmp_path / "x.npz")
    assert bad.returncode == 2 and "--class '12' is not a class of this run" in bad.stderr
    assert not (tmp_path / "x.npz").exists()

    evaluation = run_cli("evaluate", out, "--n", 100, "--data", tiny_npz)
    assert evaluation.returncode == 0, evaluation.stderr
    assert "samples asked for class c that the classifier labels c" in evaluation.stdout
    shares = json.loads((out / "metrics.json").read_text())["class_accuracy"]["per_class"]
    assert len(shares) == 10 and all(0 <= s <= 1 for s in shares)

    # The smoke run draws noise: a trained run shows that the digit asked for is the
    # digit drawn, by sample and by evaluate's share per class.
    from gan_mnist.evaluator import Evaluator

    trained = copy_run(trained_cdcgan, tmp_path)
    asked = run_cli("sample", trained, "--digit", 3, "--n", 200, "--out", tmp_path / "3.npz")
    assert asked.returncode == 0, asked.stderr
    threes = np.load(tmp_path / "3.npz")["images"]
    drawn = Evaluator.load().accuracy(threes, np.full(len(threes), 3))
    env = {"GAN_MNIST_CACHE": str(real_data_cache)}
    evaluation = run_cli("evaluate", trained, "--n", 500, "--json", env=env)
    assert evaluation.returncode == 0, evaluation.stderr
    shares = json.loads(evaluation.stdout)["class_accuracy"]["per_class"]
    print(f"\n--digit 3: {drawn:.0%} read as 3; per class: {np.round(shares, 2).tolist()}")
    assert drawn >= 0.7 and np.mean(shares) >= 0.7 and min(shares) >= 0.3


def test_digit_on_an_unconditional_run_is_refused(tmp_path, smoke_runs):
    out = smoke_runs["dcgan"]
    result = run_cli("sample", out, "--digit", "7", "--out", tmp_path / "s.npz")
    assert result.returncode == 2
    assert "--class needs a conditional run" in result.stderr and "Traceback" not in result.stderr
    walk = run_cli("interpolate", out, "--walk", "classes", "--out", tmp_path / "w.gif")
    assert walk.returncode == 2 and "needs a conditional run" in walk.stderr
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "w.gif").exists()


def test_a_damaged_generator_keras_is_a_clear_error(tmp_path):
    (tmp_path / "generator.keras").write_bytes(b"PK\x03\x04 not really a zip")
    result = run_cli("sample", tmp_path, "--out", tmp_path / "s.npz")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "generator.keras cannot be loaded" in result.stderr and "damaged" in result.stderr
    assert not (tmp_path / "s.npz").exists()


def test_an_output_file_where_a_folder_is_needed_is_refused(tmp_path, tiny_npz):
    (tmp_path / "taken").write_text("a file")
    result = run_cli(*smoke_train_args(tiny_npz, tmp_path / "taken", epochs=1))
    assert result.returncode == 2 and "cannot write to the output folder" in result.stderr
    assert (tmp_path / "taken").read_text() == "a file"


TENSORFLOW_LOG = re.compile(r"^[IWE]\d{4} |absl::InitializeLog|rebuild TensorFlow", re.M)


def test_a_train_into_a_log_file_is_one_line_per_epoch_without_tensorflow_noise(tmp_path, tiny_npz):
    # stdout is a pipe here, as with `make demo > log` or CI: no progress bar redraws.
    args = ["train", "--preset", "smoke", "--epochs", 2, "--data", tiny_npz, "--seed", 1]
    # Fresh interpreters: TensorFlow's start-up log is what this test is about.
    result = run_cli(*args, "--out", tmp_path / "r", fresh=True)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout and "━" not in result.stdout
    assert [line[:9] for line in result.stdout.splitlines() if line.startswith("epoch ")] == [
        "epoch 1/2",
        "epoch 2/2",
    ]
    assert not TENSORFLOW_LOG.search(result.stdout + result.stderr), result.stderr
    # --debug (like a TF_CPP_MIN_LOG_LEVEL of the user's) lets TensorFlow's own log through.
    debug = run_cli("--debug", *args, "--out", tmp_path / "d", "--epochs", 1, fresh=True)
    assert debug.returncode == 0 and TENSORFLOW_LOG.search(debug.stderr)
    # Nothing held back either: a line the filter holds back by name (on a machine
    # without a GPU) is there. (train()'s own filter: tests/test_quiet.py.)
    assert "failed call to cuInit" in debug.stderr


def test_a_failed_write_gets_the_advice_of_its_cause():
    import errno

    from gan_mnist.errors import write_failure

    def advice(code):
        return str(write_failure(OSError(code, "reason", "/x/f.png"), "/x", "then go on."))

    assert "Free some space" in advice(errno.ENOSPC)
    assert "a folder you can write to" in advice(errno.EACCES)
    assert "a folder you can write to" in advice(errno.EROFS)
    assert "Check the path" in advice(errno.EIO) and "space" not in advice(errno.EIO)
    assert advice(errno.ENOSPC).startswith("cannot write /x/f.png: reason.")


def test_train_evaluator_writes_its_own_file_and_evaluate_uses_it(tmp_path, tiny_npz, smoke_runs):
    from gan_mnist.evaluator import weights_path

    shipped = weights_path("mnist").read_bytes()
    made = run_cli("train-evaluator", "--data", tiny_npz, "--epochs", 1, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    mine = tmp_path / "mnist_classifier.weights.h5"
    assert mine.exists() and weights_path("mnist").read_bytes() == shipped
    assert f"--classifier {mine.name}" in made.stdout

    out = copy_run(smoke_runs["dcgan"], tmp_path)
    args = ["evaluate", out, "--n", 50, "--data", tiny_npz, "--json"]
    theirs = json.loads(run_cli(*args).stdout)["generated"]["frechet_distance"]
    ours = run_cli(*args, "--classifier", mine)
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["generated"]["frechet_distance"] != theirs


def test_evaluate_finds_the_data_set_when_the_runs_data_file_is_gone(
    tmp_path, tiny_npz, real_data_cache
):
    moved = tmp_path / "moved.npz"
    moved.write_bytes(tiny_npz.read_bytes())
    out = tmp_path / "run"
    assert run_cli(*smoke_train_args(moved, out, epochs=1, seed=2)).returncode == 0
    moved.unlink()

    result = run_cli("evaluate", out, "--n", 20, env={"GAN_MNIST_CACHE": str(real_data_cache)})
    assert result.returncode == 0, result.stderr
    assert f"note: {moved} (the run's --data) is gone; using mnist." in result.stdout


def test_sample_s_memory_check_counts_the_page_cache_as_available(tmp_path):
    # Most of a busy machine's memory is page cache, which the system drops for a new
    # process: free memory alone would refuse a --n that fits.
    from gan_mnist.cli.commands import available_memory

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 25165824 kB\nMemFree: 1048576 kB\nMemAvailable: 20971520 kB\n")
    assert available_memory(str(meminfo)) == 20971520 * 1024
    meminfo.write_text("MemTotal: 25165824 kB\nMemFree: 1048576 kB\n")  # an old kernel
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert abs(available_memory(str(meminfo)) - free) < 2**26  # free memory, as it moves
