import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from gan_mnist import artifacts
from gan_mnist.artifacts import epoch_image_path, image_grid, write_epoch_summaries
from gan_mnist.files import atomic_path
from tests.conftest import fake_digits


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_atomic_path_replaces_on_success_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "a.gif"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".gif" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_image_grid_layout():
    images, _ = fake_digits(16)
    grid = image_grid(images, scale=2, padding=2)
    assert grid.shape == ((4 * 30 + 2) * 2, (4 * 30 + 2) * 2)
    # The first image sits after the padding, each pixel doubled.
    np.testing.assert_array_equal(grid[4:60:2, 4:60:2], images[0])


def _write_epochs(out_dir, epochs):
    for epoch in epochs:
        images, _ = fake_digits(16, seed=epoch)
        artifacts.save_grid(images, epoch_image_path(out_dir, epoch))


def test_summaries_hold_every_epoch_once_in_order(tmp_path):
    _write_epochs(tmp_path, [1, 2, 3])
    gif, montage, archive = write_epoch_summaries(tmp_path)

    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 3
    first = np.asarray(Image.open(epoch_image_path(tmp_path, 1)).convert("L"))
    np.testing.assert_array_equal(frames[0][..., 0] if frames.ndim == 4 else frames[0], first)
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == [f"image_at_epoch_000{i}.png" for i in (1, 2, 3)]
    width = Image.open(montage).size[0]
    assert width == 3 * first.shape[1]

    _write_epochs(tmp_path, [4])  # a resumed run adds an epoch: rebuilt, not appended
    gif, _, archive = write_epoch_summaries(tmp_path)
    assert iio.imread(gif, index=None).shape[0] == 4
    with zipfile.ZipFile(archive) as z:
        assert len(z.namelist()) == 4


def test_loss_plot_is_written(tmp_path):
    rows = [{"epoch": e, "d_loss": 1.0 / e, "g_loss": 0.5 * e} for e in (1, 2, 3)]
    path = artifacts.plot_losses(rows, tmp_path / "losses.png")
    assert Image.open(path).size == (600, 350)


def test_missing_graphviz_prints_a_hint_and_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(artifacts.shutil, "which", lambda name: None)
    assert artifacts.plot_model_diagrams({"Generator_Model": object()}, tmp_path) == []
    assert "apt-get install graphviz" in capsys.readouterr().out
    assert not (tmp_path / "Generator_Model.png").exists()


@pytest.mark.skipif(artifacts.shutil.which("dot") is None, reason="Graphviz's dot not installed")
def test_model_diagram_is_drawn_with_graphviz(tmp_path):
    from gan_mnist.models.dcgan import build_discriminator

    written = artifacts.plot_model_diagrams(
        {"Discriminator_Model": build_discriminator(8)}, tmp_path
    )
    assert written == [tmp_path / "Discriminator_Model.png"]
    assert Image.open(written[0]).size[1] > 200
