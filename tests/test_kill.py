"""Fault injection: SIGKILL a training process after its first checkpoint, then resume."""

import signal
import time

import imageio.v3 as iio

from tests.conftest import run_cli, smoke_train_args, start_cli

EPOCHS = 12


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, tiny_npz):
    out = tmp_path / "run"
    # 12 epochs of about a third of a second: still training when the kill lands
    # (within 50 ms of the first checkpoint), and few to train again.
    args = smoke_train_args(tiny_npz, out, epochs=EPOCHS, seed=5)
    process = start_cli(*args)
    index = out / "training_checkpoints" / "checkpoint"
    deadline = time.monotonic() + 240
    while not index.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not (out / "generator.keras").exists()  # it really died mid-run

    result = run_cli(*args)

    assert result.returncode == 0, result.stderr
    resumed = [line for line in result.stdout.splitlines() if line.startswith("resuming")]
    assert resumed, result.stdout
    epoch = int(resumed[0].split("epoch ")[1].split()[0])
    assert 1 <= epoch < EPOCHS
    assert f"epoch {epoch + 1}/{EPOCHS}" in result.stdout
    assert f"epoch {epoch}/{EPOCHS}:" not in result.stdout  # the checkpointed epochs are not redone
    images = sorted(p.name for p in (out / "DCGAN_Images").iterdir())
    assert images == [f"image_at_epoch_{e:04d}.png" for e in range(1, EPOCHS + 1)]
    assert iio.imread(out / "dcgan_animation.gif", index=None).shape[0] == EPOCHS
    with open(out / "history.csv") as f:
        assert [line.split(",")[0] for line in f][1:] == [str(e) for e in range(1, EPOCHS + 1)]
    for name in ("generator.keras", "dcgan_animation.png", "dcgan_images.zip", "losses.png"):
        assert (out / name).exists(), name
