"""Every registered model family on every registered data set, through the real loop:
a smoke train, a resume, sampling (a chosen class where it applies), interpolation."""

import numpy as np
import pytest

from gan_mnist import artifacts
from gan_mnist.checkpoint_files import load_generator
from gan_mnist.config import make_config
from gan_mnist.data import DATASETS, IMAGES, load_dataset
from gan_mnist.errors import UserError
from gan_mnist.models import FAMILIES
from gan_mnist.sampling import class_walk, noise_walk, sample
from gan_mnist.training import train

# The data sets of arrays (a folder of images: tests/test_images.py).
ARRAY_SETS = [name for name in DATASETS if name != IMAGES]
CASES = [(family, dataset) for family in FAMILIES for dataset in ARRAY_SETS]


@pytest.fixture(scope="module")
def tiny_sets(tiny_npz):
    """The fabricated arrays, read as each registered data set."""
    return {name: load_dataset(name, tiny_npz) for name in ARRAY_SETS}


@pytest.mark.parametrize("family, dataset", CASES)
def test_train_resume_and_sample(tmp_path, tiny_sets, family, dataset):
    config = make_config("smoke", model=family, dataset=dataset, epochs=1, seed=4)
    data = tiny_sets[dataset]
    first = train(config, tmp_path, data=data, quiet=True)
    assert (first.first_epoch, first.last_epoch) == (1, 1)

    resumed = train(
        make_config("smoke", model=family, dataset=dataset, epochs=2),
        tmp_path,
        data=data,
        quiet=True,
    )
    assert (resumed.first_epoch, resumed.last_epoch) == (2, 2)
    assert [e for e, _ in artifacts.epoch_images(tmp_path)] == [1, 2]

    models, saved, _ = load_generator(tmp_path)
    assert (saved.model, saved.dataset) == (family, dataset)
    images, labels = sample(models, 12, seed=1)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert images.std() > 0  # not a blank page whatever the pixel range
    if FAMILIES[family].conditional:
        sevens, sevens_labels = sample(models, 5, seed=1, label=7)
        assert sevens_labels.tolist() == [7] * 5
        # Same seed: the same noise; only the asked-for class differs.
        assert not np.array_equal(sevens, sample(models, 5, seed=1, label=1)[0])
        assert labels is not None and set(labels.tolist()) <= set(range(10))
    else:
        assert labels is None
        with pytest.raises(ValueError, match="cannot be asked for a class"):
            sample(models, 5, seed=1, label=7)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_preview_grid_follows_the_family_layout(tmp_path, tiny_sets, family):
    config = make_config("smoke", model=family, epochs=1, seed=2, num_examples=4)
    train(config, tmp_path, data=tiny_sets["mnist"], quiet=True)
    grid = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).open(artifacts.epoch_image_path(tmp_path, 1))
    )
    rows = 10 if FAMILIES[family].conditional else 2  # 4 examples: 2 x 2, or 10 classes x 4
    columns = 4 if FAMILIES[family].conditional else 2
    assert grid.shape == ((rows * 30 + 2) * 4, (columns * 30 + 2) * 4)


def test_changing_the_model_or_data_set_against_a_checkpoint_is_refused(tmp_path, tiny_sets):
    train(make_config("smoke", epochs=1, seed=1), tmp_path, data=tiny_sets["mnist"], quiet=True)
    with pytest.raises(UserError, match="--model 'dcgan' -> 'mlp'"):
        train(make_config("smoke", model="mlp", epochs=2), tmp_path, data=tiny_sets["mnist"])
    with pytest.raises(UserError, match="--dataset 'mnist' -> 'fashion_mnist'"):
        train(
            make_config("smoke", dataset="fashion_mnist", epochs=2),
            tmp_path,
            data=tiny_sets["fashion_mnist"],
        )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_sets):
    """A one-epoch run of each family, for the interpolation tests."""
    runs = {}
    for family in FAMILIES:
        out = tmp_path_factory.mktemp(family)
        train(
            make_config("smoke", model=family, epochs=1, seed=3),
            out,
            data=tiny_sets["mnist"],
            quiet=True,
        )
        runs[family] = load_generator(out)[0]
    return runs


@pytest.mark.parametrize("family", list(FAMILIES))
def test_noise_walk_passes_exactly_through_its_fixed_noise(trained, family):
    models = trained[family]
    frames = noise_walk(models, seed=5, walks=3, keypoints=3, steps=4)
    assert len(frames) == 3 * 4
    points = np.random.default_rng(5).standard_normal((3, 3, models.noise_dim)).astype("float32")
    for k in range(3):
        noise = points[k]
        if models.conditional:  # every class's row uses the same noise
            labels = np.repeat(np.arange(10), 3)
            expected = models.generate(np.tile(noise, (10, 1)), labels)
        else:
            expected = models.generate(noise)
        np.testing.assert_array_equal(frames[k * 4], models.to_uint8(expected))
    assert not np.array_equal(frames[1], frames[0])  # it moves between the points


def test_class_walk_shows_each_pure_class_at_its_keyframe(trained):
    models = trained["cdcgan"]
    frames = class_walk(models, seed=2, walks=3, steps=5)
    assert len(frames) == 10 * 5
    noise = np.random.default_rng(2).standard_normal((3, models.noise_dim)).astype("float32")
    for c in (0, 4, 9):
        expected = models.to_uint8(models.generate(noise, np.full(3, c)))
        np.testing.assert_array_equal(frames[c * 5], expected)
    with pytest.raises(ValueError, match="no classes"):
        class_walk(trained["dcgan"], seed=0)
