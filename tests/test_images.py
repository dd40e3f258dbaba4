"""A folder of your own images as a data set (`gan_mnist.images`, ``--data FOLDER``):
its layout and what is skipped, each image made 28x28 grey, the errors for what is not
an image, the cache, any number of classes through training, sampling and the app, and
the measure (a classifier trained on the folder, or a plain refusal)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gan_mnist import data as data_module
from gan_mnist import images, runfolder
from gan_mnist.config import make_config
from gan_mnist.errors import UserError
from tests.conftest import fake_digits, run_cli


def write_folder(root: Path, classes: dict[str, int], size=(40, 40), seed: int = 0) -> Path:
    """Class folders of dark-on-light digits-like images, PNG and JPEG in turn, in RGB."""
    pixels, _ = fake_digits(sum(classes.values()), seed)
    k = 0
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = Image.fromarray(255 - pixels[k]).convert("RGB").resize(size)
            image.save(root / name / f"{i:04d}.{'png' if i % 2 else 'jpg'}")
            k += 1
    return root


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache, so each test reads its folders itself."""
    monkeypatch.setenv("GAN_MNIST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_folders_layout_classes_in_name_order_and_whats_skipped(tmp_path):
    root = write_folder(tmp_path / "f", {"zebra": 3, "a class": 2, "Bee": 2})
    (root / "__MACOSX" / "zebra").mkdir(parents=True)
    (root / "__MACOSX" / "zebra" / "._0000.jpg").write_bytes(b"\x00\x05")
    (root / ".DS_Store").write_bytes(b"\x00")
    (root / "zebra" / "notes.txt").write_text("mine")
    (root / "zebra" / ".hidden.png").write_bytes(b"x")
    found = images.layout(root)
    assert found.class_names == ("Bee", "a class", "zebra")  # sorted, as Keras sorts them
    assert len(found.files) == 7 and sorted(set(found.labels)) == [0, 1, 2]
    assert found.skipped == 4  # __MACOSX, .DS_Store, notes.txt, .hidden.png

    one = write_folder(tmp_path / "one", {"x": 4})
    flat = tmp_path / "flat"
    shutil.copytree(one / "x", flat)
    assert images.layout(flat).class_names == ("images",) and len(images.layout(flat).files) == 4


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: f.mkdir(), "is empty"),
        (lambda f: (f.mkdir(), (f / ".DS_Store").write_bytes(b"x")), "is empty but for hidden"),
        (lambda f: (f.mkdir(), (f / "a.txt").write_text("x")), "holds no images (1 other"),
        (
            lambda f: (write_folder(f, {"a": 2}), (f / "b").mkdir(), (f / "b" / "x.txt").touch()),
            "the class folder",
        ),
        (
            lambda f: (write_folder(f, {"a": 2}), shutil.copy(next((f / "a").iterdir()), f)),
            "both directly in it (1) and in subfolders (a)",
        ),
    ],
)
def test_a_folder_that_is_not_a_data_set_is_one_clear_error(tmp_path, make, message):
    folder = tmp_path / "f"
    make(folder)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        images.layout(folder)


def test_each_image_becomes_28_by_28_grey_as_documented(tmp_path):
    # Pure red is 76 in ITU-R 601 luma (0.299 * 255).
    Image.new("RGB", (28, 28), (255, 0, 0)).save(tmp_path / "red.png")
    assert (images.to_square(tmp_path / "red.png") == 76).all()
    # A wide image keeps its shape: scaled to 28 wide, centred on its border's colour.
    wide = Image.new("L", (60, 20), 200)
    ImageDraw.Draw(wide).rectangle([0, 5, 59, 14], fill=10)
    wide.save(tmp_path / "wide.png")
    square = images.to_square(tmp_path / "wide.png")
    assert square.shape == (28, 28) and square[0, 0] == 200 and square[27, 27] == 200
    assert square[14, 14] < 60  # the dark bar, across the middle
    # Transparency: dark strokes on nothing are laid on white, light ones on black.
    for ink, background in ((0, 255), (255, 0)):
        drawn = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        ImageDraw.Draw(drawn).line([(4, 16), (28, 16)], fill=(ink, ink, ink, 255), width=4)
        drawn.save(tmp_path / "strokes.png")
        square = images.to_square(tmp_path / "strokes.png")
        assert square[0, 0] == background and abs(int(square[14, 14]) - ink) < 60


def test_16_bit_scans_and_rotated_photos_come_out_as_they_look(tmp_path):
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(ramp, mode="I;16").save(tmp_path / "scan16.png")
    square = images.to_square(tmp_path / "scan16.png")
    assert square.min() < 20 and square.max() > 230 and (square == 255).mean() < 0.1
    # A photo stored sideways with EXIF orientation 6 (rotate 90° clockwise to view).
    stored = Image.new("L", (40, 20), 255)
    ImageDraw.Draw(stored).rectangle([0, 0, 9, 19], fill=0)  # dark on the stored left
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "photo.jpg", exif=exif)
    upright = images.to_square(tmp_path / "photo.jpg")
    assert upright[2, 14] < 80 and upright[25, 14] > 170  # the dark band is now on top


def test_what_is_not_an_image_is_named_with_how_many_were_fine(tmp_path, cache):
    root = write_folder(tmp_path / "f", {"a": 20, "b": 20})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    Image.new("L", (5, 30)).save(root / "a" / "tiny.png")
    before = snapshot(root)
    result = run_cli("train", "--preset", "smoke", "--data", root, "--out", tmp_path / "r")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert f"{root / 'a' / 'tiny.png'} is not a usable image" in said or "broken.png" in said
    assert "(and 1 more like it); the other 40 files were fine" in said
    assert "5×30 pixels, smaller than 8×8" in said or "cannot identify" in said
    assert snapshot(root) == before and not (tmp_path / "r").exists()  # no run folder left


def test_a_folder_is_read_once_and_read_again_when_it_changes(tmp_path, cache, monkeypatch):
    root = write_folder(tmp_path / "f", {"a": 6, "b": 6})
    before = snapshot(root)
    first = data_module.load_dataset("images", root)
    assert first.x_train.shape == (12, 28, 28) and first.class_names == ("a", "b")
    assert "dark on light" in first.details
    assert len(first.x_test) == 1 and first.held_out.sum() == 1  # a fixed tenth, at least 1

    def no_decoding(found, workers=None):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "read_images", no_decoding)
    again = data_module.load_dataset("images", root)  # from the cache
    np.testing.assert_array_equal(again.x_train, first.x_train)
    Image.new("L", (30, 30), 0).save(root / "b" / "0001.png")  # an image edited
    with pytest.raises(AssertionError, match="decoded again"):
        data_module.load_dataset("images", root)
    monkeypatch.undo()
    assert snapshot(root).keys() == before.keys()  # nothing of ours written into it


def test_a_runs_identity_is_its_images(tmp_path):
    one = write_folder(tmp_path / "one", {"a": 4, "b": 4})
    same = tmp_path / "elsewhere"
    shutil.copytree(one, same)
    other = write_folder(tmp_path / "other", {"a": 4, "b": 4}, seed=5)

    def folder(path):
        return runfolder.run_folder(make_config("smoke", seed=1, data=str(path)), tmp_path)

    assert make_config("smoke", data=str(one)).dataset == "images"
    assert folder(one) == folder(same) and folder(one) != folder(other)


def test_twelve_classes_train_sample_and_walk_and_outlive_their_folder(tmp_path, cache):
    names = {f"class {i:02d}": 12 for i in range(12)}
    root = write_folder(tmp_path / "many", names, size=(30, 24))
    out = tmp_path / "r"
    trained = run_cli(
        "train", "--preset", "smoke", "--model", "cdcgan", "--data", root, "--out", out,
        "--epochs", 1, "--seed", 1, "--quiet",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "from " + str(root) + " (12 classes, dark on light)" in trained.stdout
    saved = json.loads((out / "config.json").read_text())
    assert saved["dataset"] == "images" and saved["class_names"] == list(names)
    grid = np.asarray(Image.open(out / "DCGAN_Images" / "image_at_epoch_0001.png"))
    assert grid.shape[0] > grid.shape[1]  # 12 rows (classes) of 10 columns

    shutil.move(root, tmp_path / "moved")  # the folder gone: its run still knows its classes
    sampled = run_cli("sample", out, "--class", "class 11", "--n", 5, "--out", tmp_path / "s.npz")
    assert sampled.returncode == 0 and "of class 'class 11'" in sampled.stdout, sampled.stderr
    wrong = run_cli("sample", out, "--class", "class 12", "--n", 5, "--out", tmp_path / "s.npz")
    assert wrong.returncode == 2 and "'class 00', 'class 01'" in wrong.stderr
    walk = run_cli(
        "interpolate", out, "--walk", "classes", "--steps", 2, "--out", tmp_path / "w.gif"
    )
    assert walk.returncode == 0 and "wrote 24 frames" in walk.stdout, walk.stderr
    from gan_mnist import app

    assert app.load_run(out).class_names == list(names)


def test_one_class_trains_unconditional_families_and_refuses_cdcgan(tmp_path, cache):
    root = write_folder(tmp_path / "f", {"x": 40})
    flat = tmp_path / "my drawings"
    shutil.copytree(root / "x", flat)
    refused = run_cli(
        "train", "--preset", "smoke", "--model", "cdcgan", "--data", flat, "--out", tmp_path / "c"
    )
    assert refused.returncode == 2 and "has one class (images)" in refused.stderr
    assert not (tmp_path / "c").exists()
    made = run_cli(
        "train", "--preset", "smoke", "--data", flat, "--out", tmp_path / "r", "--epochs", 1
    )
    assert made.returncode == 0, made.stderr
    assert "(1 class, dark on light)" in made.stdout
    measured = run_cli("evaluate", tmp_path / "r", "--n", 16)
    assert measured.returncode == 2 and "cannot be measured" in measured.stderr
    assert "at least 2 classes" in measured.stderr


def test_changed_images_are_said_and_changed_classes_refused_on_resume(tmp_path, cache):
    root = write_folder(tmp_path / "f", {"a": 20, "b": 20})
    out = tmp_path / "r"
    args = ("train", "--preset", "smoke", "--data", root, "--out", out, "--quiet")
    assert run_cli(*args, "--epochs", 1).returncode == 0
    Image.new("L", (30, 30), 0).save(root / "a" / "0001.png")
    resumed = run_cli(*args, "--epochs", 2)
    assert resumed.returncode == 0 and "training images differ" in resumed.stdout
    (root / "a").rename(root / "c")
    refused = run_cli(*args, "--epochs", 3)
    assert refused.returncode == 2 and "class names ('a', 'b') -> ('b', 'c')" in refused.stderr


def test_a_folder_with_a_classifier_of_its_own_is_measured_by_it(tmp_path, cache):
    root = write_folder(tmp_path / "f", {"bars": 1000, "dots": 1000}, size=(28, 28))
    before = snapshot(root)
    out = tmp_path / "r"
    assert run_cli("train", "--preset", "smoke", "--data", root, "--out", out).returncode == 0
    unmeasured = run_cli("evaluate", out, "--n", 64)
    assert unmeasured.returncode == 2 and "no classifier knows the images" in unmeasured.stderr
    assert f"gan-mnist train-evaluator --data {root}" in " ".join(unmeasured.stderr.split())

    trained = run_cli("train-evaluator", "--data", root, "--epochs", 1)
    assert trained.returncode == 0, trained.stderr
    assert "on 200 test images" in trained.stdout
    assert f"`gan-mnist evaluate` and --eval-every use it for runs of {root}" in trained.stdout
    measured = run_cli("evaluate", out, "--n", 64)
    assert measured.returncode == 0, measured.stderr
    assert f"measured by the classifier trained on {root} (" in measured.stdout
    assert "right on its 200 held-out images" in measured.stdout
    assert "class histogram (bars..dots)" in measured.stdout
    assert snapshot(root) == before
