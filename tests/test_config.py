import dataclasses

import pytest

from gan_mnist.config import PRESETS, TrainConfig, make_config, preset_values
from gan_mnist.errors import UserError
from gan_mnist.models import FAMILIES


def test_tutorial_preset_is_the_tensorflow_tutorial():
    config = make_config("tutorial")
    assert (config.batch_size, config.gen_lr, config.disc_lr) == (256, 1e-4, 1e-4)
    assert (config.epochs, config.noise_dim, config.num_examples) == (50, 100, 16)
    assert config.checkpoint_every == 15 and config.base_filters == 64


KEYS = ("model", "base_filters", "batch_size", "gen_lr", "disc_lr", "beta_1", "dropout")
KEYS += ("epochs", "limit", "noise_dim", "ema", "jit_compile", "checkpoint_every")


@pytest.mark.parametrize(
    "preset, model, expected",
    [  # written out by hand from docs/models-and-presets.md, not merged like the code
        (
            "tutorial",
            None,
            ("dcgan", 64, 256, 1e-4, 1e-4, 0.9, 0.3, 50, None, 100, 0.0, "auto", 15),
        ),
        (
            "demo",
            None,
            ("infogan-nets", 32, 32, 1e-3, 2e-4, 0.5, 0.0, 4, None, 62, 0.999, "on", 1),
        ),
        (
            "fast",
            None,
            ("infogan-nets", 32, 32, 1e-3, 2e-4, 0.5, 0.0, 16, None, 62, 0.9998, "on", 1),
        ),
        ("smoke", None, ("dcgan", 8, 32, 1e-4, 1e-4, 0.9, 0.3, 2, 256, 100, 0.0, "auto", 1)),
        (
            "demo",
            "dcgan",
            ("dcgan", 32, 32, 4e-4, 2e-4, 0.5, 0.0, 12, 20000, 100, 0.999, "auto", 1),
        ),
        (
            "demo",
            "cdcgan",
            ("cdcgan", 32, 32, 4e-4, 4e-4, 0.5, 0.0, 12, 20000, 100, 0.999, "auto", 1),
        ),
        ("smoke", "cdcgan", ("cdcgan", 8, 32, 1e-4, 1e-4, 0.9, 0.3, 2, 256, 100, 0.0, "auto", 1)),
        ("smoke", "mlp", ("mlp", 8, 32, 1e-4, 1e-4, 0.9, 0.3, 2, 256, 100, 0.0, "auto", 1)),
        ("demo", "mlp", ("mlp", 64, 64, 2e-4, 2e-4, 0.5, 0.0, 15, None, 100, 0.999, "auto", 1)),
        (
            "smoke",
            "infogan-nets",
            ("infogan-nets", 8, 32, 1e-3, 2e-4, 0.5, 0.0, 2, 256, 62, 0.0, "auto", 1),
        ),
    ],
)
def test_what_each_preset_trains(preset, model, expected):
    config = make_config(preset, **({"model": model} if model else {}))
    assert tuple(getattr(config, k) for k in KEYS) == expected


# Written out by hand from docs/results.md: each preset and the families it was measured
# with (the smoke preset, the tests' own run, trains every family).
MEASURED = {
    ("tutorial", "dcgan"),
    ("demo", "infogan-nets"),
    ("demo", "dcgan"),
    ("demo", "cdcgan"),
    ("demo", "mlp"),
    ("fast", "infogan-nets"),
    *(("smoke", model) for model in FAMILIES),
}


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("model", list(FAMILIES))
def test_a_preset_trains_only_the_families_it_was_measured_with(name, model, tmp_path):
    if (name, model) not in MEASURED:
        with pytest.raises(UserError, match=f"--preset {name} was never trained with") as refused:
            make_config(name, model=model)
        assert "--preset demo: infogan-nets, dcgan, cdcgan, mlp" in str(refused.value)
        return
    config = make_config(name, model=model)
    assert config.model == model
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert TrainConfig.from_json_file(path) == config


def test_conditional_preview_defaults_to_ten_columns_unless_a_flag_says_otherwise():
    assert make_config("demo", model="cdcgan").num_examples == 10
    assert make_config("demo", model="cdcgan", num_examples=4).num_examples == 4
    assert make_config("demo").num_examples == 16


def test_flags_override_presets_and_none_means_not_given():
    config = make_config("demo", model="dcgan", epochs=3, batch_size=None)
    assert config.epochs == 3
    assert config.batch_size == preset_values("demo", "dcgan")["batch_size"]


def test_a_preset_trains_its_own_family_unless_model_is_given():
    from gan_mnist.models import FAMILIES

    assert make_config("demo").model == PRESETS["demo"].model == "infogan-nets"
    assert make_config("fast").model == "infogan-nets"
    assert make_config("tutorial").model == make_config("smoke").model == "dcgan"
    demo = make_config("demo")  # the preset's own settings, not the DCGAN's recipe
    assert demo.jit_compile == PRESETS["demo"].settings["jit_compile"] == "on"
    assert make_config("demo", model="dcgan").jit_compile == "auto"
    assert "jit_compile" not in FAMILIES["dcgan"].recipes["demo"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ema": 1.0}, "--ema must be in [0, 1)"),
        ({"steps_per_call": -1}, "--steps-per-call must be 0"),
        ({"strategy": "horovod"}, "--strategy must be one of auto, one, mirrored"),
        ({"mixed_precision": "yes"}, "--mixed-precision must be one of auto, off, float16"),
        ({"epochs": 0}, "--epochs must be a positive"),
        ({"batch_size": -5}, "--batch-size must be a positive"),
        ({"limit": 0}, "--limit must be a positive"),
        ({"gen_lr": 0.0}, "--gen-lr must be > 0"),
        ({"beta_1": 1.0}, "--beta-1 must be in [0, 1)"),
        ({"dataset": "cifar"}, "--dataset must be one of mnist, fashion_mnist"),
        ({"model": "vae"}, "--model must be one of dcgan, cdcgan, infogan-nets, mlp"),
        ({"loss": "wgan"}, "--loss must be one of nonsaturating, hinge, least_squares"),
        ({"save_generator_every": -1}, "--save-generator-every"),
        ({"seed": -1}, "--seed must be a whole number from 0"),
    ],
)
def test_impossible_values_are_refused_with_the_flag_name(overrides, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(")", r"\)")):
        make_config("smoke", **overrides)


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown preset 'quick'"):
        make_config("quick")


def test_config_json_round_trip(tmp_path):
    config = make_config("demo", seed=5, data="x.npz")
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert TrainConfig.from_json_file(path) == config


def test_fixed_differences_name_only_architecture_and_data_fields():
    base = make_config("smoke", seed=1)
    assert base.fixed_differences(dataclasses.replace(base, epochs=9, gen_lr=1.0)) == []
    differences = base.fixed_differences(dataclasses.replace(base, base_filters=16))
    assert differences == ["--base-filters 16 -> 8"]
