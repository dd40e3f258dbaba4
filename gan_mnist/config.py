"""Training settings: one frozen dataclass, and the named presets built from it.

Every default lives here. The CLI derives its flags from the fields (their
``help`` metadata is the flag's help text), and each run writes its resolved
config to ``config.json`` next to its outputs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_mnist import runfolder
from gan_mnist.data import DATASETS, IMAGES, NUM_CLASSES, is_image_folder
from gan_mnist.devices import LEVER_CHOICES, PRECISION_CHOICES, STRATEGIES
from gan_mnist.errors import UserError
from gan_mnist.files import CONFIG_NAME, RUN_FORMAT
from gan_mnist.losses import LOSSES
from gan_mnist.metrics import NEIGHBOURS
from gan_mnist.models import FAMILIES

# How the learning rates move over a run (--lr-decay; `gan_mnist.step` applies them).
LR_DECAYS = ("off", "linear")


def _setting(
    default: Any, help: str, *, fixed: bool = False, choices=None, flag: bool = True
) -> Any:
    """A field with its CLI help; ``fixed`` fields cannot change when a run resumes;
    ``flag=False`` fields are set by the code, not on the command line."""
    return field(
        default=default,
        metadata={"help": help, "fixed": fixed, "choices": choices, "flag": flag},
    )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the defaults are the `tutorial` preset)."""

    model: str = _setting(
        "dcgan",
        "model family (default: the preset's, see the presets below): "
        + "; ".join(f"{f.name} = {f.summary}" for f in FAMILIES.values()),
        fixed=True,
        choices=tuple(FAMILIES),
    )
    dataset: str = _setting(
        "mnist",
        "training data set: " + ", ".join(f"{d.name} ({d.title})" for d in DATASETS.values()),
        fixed=True,
        choices=tuple(DATASETS),
    )
    loss: str = _setting(
        "nonsaturating",
        "GAN loss: " + "; ".join(f"{k} = {v.summary}" for k, v in LOSSES.items()),
        choices=tuple(LOSSES),
    )
    noise_dim: int = _setting(100, "length of the generator's noise vector", fixed=True)
    base_filters: int = _setting(
        64,
        "width of both networks: the generator's last conv and the discriminator's first "
        "have this many filters, the others 2x and 4x (64 = the TensorFlow tutorial)",
        fixed=True,
    )
    # Fixed: a rate above 0 gives each Dropout layer a seed state in the checkpoint.
    dropout: float = _setting(0.3, "dropout rate after each discriminator layer", fixed=True)
    epochs: int = _setting(50, "train until this epoch (a total, also when resuming)")
    batch_size: int = _setting(256, "images per training step")
    limit: int | None = _setting(None, "train on the first N training images only")
    gen_lr: float = _setting(1e-4, "generator Adam learning rate")
    disc_lr: float = _setting(1e-4, "discriminator Adam learning rate")
    beta_1: float = _setting(0.9, "Adam beta_1 for both optimizers (the DCGAN paper uses 0.5)")
    lr_decay: str = _setting(
        "off",
        "learning-rate schedule: off = the rates stay as given; linear = both fall in a "
        "straight line from the given rates at the first step to 0 after the last step of "
        "--epochs (resumed with a larger --epochs, the run follows the longer line from "
        "where it is)",
        choices=LR_DECAYS,
    )
    num_examples: int = _setting(
        16,
        "fixed noise vectors drawn in each epoch's preview grid (conditional models: "
        "its columns, one row per class)",
        fixed=True,  # the checkpoint holds the preview's noise, with its shape
    )
    checkpoint_every: int = _setting(1, "save a checkpoint every K epochs (and always at the end)")
    checkpoint_minutes: float = _setting(
        5.0,
        "also save one after M minutes of training since the last, mid-epoch if need be, "
        "so a crash loses at most M minutes (0 = by epochs only)",
    )
    save_generator_every: int = _setting(
        0, "also save generators/generator_epoch_XXXX.keras every K epochs (0 = never)"
    )
    eval_every: int = _setting(
        0,
        "every K epochs measure eval_samples digits with its data set's classifier, log the "
        "metrics and keep generator_best.keras by Fréchet distance (0 = never)",
    )
    eval_samples: int = _setting(2000, "generated digits per evaluation during training")
    ema: float = _setting(
        0.0,
        "decay D of an exponential moving average of the generator's weights, from the "
        "first step and bias-corrected (as Adam's moments are): once a run is well past "
        "1/(1-D) steps it spans about the last 1/(1-D) (0.999: 1,000), before that all "
        "its steps; the averaged generator draws the previews, samples and evaluations "
        "while the raw one trains (0 = off)",
        fixed=True,
    )
    strategy: str = _setting(
        "auto",
        "tf.distribute strategy: one = one device; mirrored = all local GPUs (or the "
        "logical CPUs of GAN_MNIST_CPU_DEVICES); multiworker = the machines in TF_CONFIG; "
        "tpu = a Colab/Cloud TPU; auto = tpu on a TPU runtime, mirrored with 2+ GPUs, "
        "else one. --batch-size is the global batch",
        choices=STRATEGIES,
    )
    sync_batchnorm: str = _setting(
        "on",
        "with several replicas, BatchNorm uses the whole global batch's statistics (on) "
        "or each replica's own (off)",
        choices=("on", "off"),
    )
    jit_compile: str = _setting(
        "auto", "XLA-compile the step (auto = on with a GPU or TPU)", choices=LEVER_CHOICES
    )
    mixed_precision: str = _setting(
        "auto",
        "compute in float16 (with loss scaling) or bfloat16, weights, logits and losses in "
        "float32; off = float32 throughout (auto = float16 on one GPU, bfloat16 on a TPU, "
        "off on a CPU)",
        choices=PRECISION_CHOICES,
    )
    steps_per_call: int = _setting(
        0,
        "training steps per compiled call: fewer host round trips (0 = auto: 1 on CPU, "
        "16 on GPU/TPU)",
    )
    seed: int | None = _setting(None, "random seed; a run without one picks, prints and saves one")
    architecture: str | None = _setting(
        None,
        "fingerprint of networks built outside the package and passed to train(models=...)",
        fixed=True,
        flag=False,
    )
    data: str | None = _setting(
        None,
        "your own data instead of the download: a Keras-format .npz (x_train, y_train, "
        "x_test, y_test), a folder of the four IDX files, or a folder of images (PNG, "
        "JPEG, BMP, GIF, WebP, TIFF; directly in it for one class or one subfolder per "
        "class), each made 28x28 grey: its longer side scaled to 28 (Lanczos), centred on "
        "its border's colour, grey by ITU-R 601 luma, transparency laid on a background "
        "that keeps its strokes visible (docs/data.md); the data set is then `images`",
    )
    class_names: tuple[str, ...] | None = _setting(
        None,
        "the classes of a folder of images, from its subfolders (None: the data set's own)",
        fixed=True,
        flag=False,
    )

    def __post_init__(self) -> None:
        for name in (
            "epochs",
            "batch_size",
            "noise_dim",
            "base_filters",
            "num_examples",
            "checkpoint_every",
            "eval_samples",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UserError(
                    f"{flag_name(name)} must be a positive whole number, got {value!r}."
                )
        check_eval_samples(self.eval_samples, "--eval-samples")
        for name in ("save_generator_every", "eval_every"):
            if getattr(self, name) < 0:
                raise UserError(
                    f"{flag_name(name)} must be 0 (never) or a positive number of epochs, "
                    f"got {getattr(self, name)}."
                )
        if self.seed is not None:
            check_seed(self.seed)
        if not self.checkpoint_minutes >= 0:
            raise UserError(
                f"--checkpoint-minutes must be 0 (by epochs only) or a positive number of "
                f"minutes, got {self.checkpoint_minutes}."
            )
        if not 0 <= self.dropout < 1:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}.")
        if self.limit is not None and self.limit <= 0:
            raise UserError(f"--limit must be a positive number of images, got {self.limit}.")
        for name in ("gen_lr", "disc_lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"{flag_name(name)} must be > 0, got {getattr(self, name)}.")
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema must be in [0, 1) (0 = off; 0.999 is usual), got {self.ema}.")
        if not isinstance(self.steps_per_call, int) or self.steps_per_call < 0:
            raise UserError(
                "--steps-per-call must be 0 (auto) or a positive number, got "
                f"{self.steps_per_call}."
            )
        if not 0 <= self.beta_1 < 1:
            raise UserError(f"--beta-1 must be in [0, 1), got {self.beta_1}.")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise UserError(
                    f"{flag_name(f.name)} must be one of {', '.join(choices)}, "
                    f"got {getattr(self, f.name)!r}."
                )

    @property
    def classes(self) -> tuple[str, ...]:
        """The run's classes: a folder's (saved with the run), or its data set's."""
        return self.class_names or DATASETS[self.dataset].class_names

    @property
    def num_classes(self) -> int:
        """How many classes the run's images have (a conditional model's one-hot size)."""
        return len(self.class_names) if self.class_names else NUM_CLASSES

    def to_json(self) -> str:
        """config.json's text: the mark of a run of ours, then every setting."""
        return json.dumps({"format": RUN_FORMAT, **dataclasses.asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json_file(cls, path: Path) -> TrainConfig:
        values = json.loads(Path(path).read_text())
        if not isinstance(values, dict):
            raise ValueError(f"it holds a JSON {type(values).__name__}, not an object of settings")
        if values.get("format") != RUN_FORMAT:
            raise ValueError(f'this package did not write it: no "format": "{RUN_FORMAT}"')
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The settings in ``values``; keys that are not settings are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("class_names") is not None:  # JSON has lists, the config tuples
            values["class_names"] = tuple(values["class_names"])
        return cls(**values)

    def fixed_differences(self, other: TrainConfig) -> list[str]:
        """Fields that define the checkpoint's shape or data and differ from ``other``."""
        return [
            f"{flag_name(f.name) if f.metadata['flag'] else f.name.replace('_', ' ')} "
            f"{getattr(other, f.name)!r} -> {getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.metadata["fixed"] and getattr(self, f.name) != getattr(other, f.name)
        ]


# Settings a run keeps although no checkpoint shape depends on them: its seed (the
# data order and noise the checkpoint's position and generator state belong to).
KEPT_BY_A_RUN = ("seed",)


def resumed_config(previous: TrainConfig, given: dict[str, Any]) -> tuple[TrainConfig, list[str]]:
    """The settings a run continues with: its own (``previous``, from its config.json),
    with the changeable settings given explicitly (None = not given) on top.

    Returns:
        (the config, one "--flag old -> new" line per change).

    Raises:
        UserError: a given setting that the checkpoint fixes differs from the run's.
    """
    changed = {k: v for k, v in given.items() if v is not None and v != getattr(previous, k)}
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    lines = {k: f"{flag_name(k)} {getattr(previous, k)!r} -> {v!r}" for k, v in changed.items()}
    fixed = [line for k, line in lines.items() if fields[k].metadata["fixed"]]
    fixed += [lines[k] for k in KEPT_BY_A_RUN if k in changed]
    if fixed:
        raise UserError(
            f"the run was made with other settings that its checkpoint fixes "
            f"({'; '.join(fixed)}). Leave them out to continue the run with its own, or "
            "train a new run into another --out folder."
        )
    return dataclasses.replace(previous, **changed), list(lines.values())


def flag_name(name: str) -> str:
    """The command-line flag of a `TrainConfig` field: gen_lr -> --gen-lr."""
    return "--" + name.replace("_", "-")


def check_seed(seed: int) -> None:
    """A seed every random generator here takes (NumPy's refuses negatives)."""
    if not 0 <= seed < 2**31:
        raise UserError(f"--seed must be a whole number from 0 to 2**31 - 1, got {seed}.")


def saved_config(out_dir: Path) -> TrainConfig | None:
    """The config a previous run wrote into ``out_dir``, if any."""
    path = Path(out_dir) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        return TrainConfig.from_json_file(path)
    except (ValueError, TypeError) as error:
        raise UserError(
            f"{path} is not a valid run config ({error}). Restore it, or train a new run "
            "into another --out folder."
        ) from None


def run_config(folder: Path, say: bool = True) -> TrainConfig | None:
    """A run's settings: its config.json, or, when that is lost, the ones its newest
    readable checkpoint holds; None for a folder without either.

    Raises:
        UserError: a config.json that this package did not write, or cannot read.
    """
    config = saved_config(folder)
    if config is not None:
        return config
    saved = runfolder.saved_settings(folder)
    if saved is None:
        return None
    if say:
        print(f"note: {Path(folder) / CONFIG_NAME} is missing; using its checkpoint's settings.")
    return TrainConfig.from_dict(saved["config"])


MIN_EVAL_SAMPLES = NEIGHBOURS + 1  # precision and recall need each sample's neighbours


def check_eval_samples(n: int, flag: str) -> None:
    """Enough samples (``flag``'s value) to measure precision and recall."""
    if n < MIN_EVAL_SAMPLES:
        raise UserError(
            f"{flag} must be at least {MIN_EVAL_SAMPLES} (precision and recall need each "
            f"sample's {NEIGHBOURS} nearest neighbours), got {n}."
        )


# Epochs that `gan-mnist train-evaluator` trains each data set's classifier for.
EVALUATOR_EPOCHS = {"mnist": 4, "fashion_mnist": 8, "images": 8}

# How `train` shows progress (--progress): a live bar, log lines, or the epoch lines only.
PROGRESS_MODES = ("bar", "lines", "none")


@dataclass(frozen=True)
class Preset:
    """A named recipe: the model family it trains unless --model says otherwise, and
    every setting it changes for that family. Each family's own needs (the InfoGAN
    networks' noise size and learning rates, a conditional preview's columns) and its
    recipes for presets made for another family are in `gan_mnist.models.FAMILIES`."""

    model: str
    settings: dict[str, Any]
    about: str  # one line for docs and --help


PRESETS: dict[str, Preset] = {
    # The TensorFlow DCGAN tutorial that the seed projects copy: TrainConfig's
    # defaults (its time on a CPU: docs/results.md, "The anchor").
    "tutorial": Preset("dcgan", dict(checkpoint_every=15), "the TensorFlow tutorial"),
    # The InfoGAN paper's networks with the paper's recipe (their family's defaults), at
    # half the paper's width (--base-filters 32: 3.5x the images a second on this CPU,
    # so in about the same minutes it sees three times the images of the full width's 4
    # epochs of 20,000, and ends closer to MNIST), batch 32 (at the paper's 64 one seed
    # of three collapsed), XLA on the CPU too, and 4 epochs of all 60,000 images (closer
    # to MNIST than 12 of the first 20,000, the same steps). Figures: docs/results.md,
    # "The presets' evidence".
    "demo": Preset(
        "infogan-nets",
        dict(
            epochs=4,
            batch_size=32,
            base_filters=32,
            jit_compile="on",
            # Previews, samples and evaluations from a moving average of G's weights.
            ema=0.999,
        ),
        "real digits in about 4 minutes on a 2-core CPU",
    ),
    # The demo's half-width networks for 16 epochs of all 60,000 images (30,000 steps,
    # about 14 minutes of training in the CPU's fast state), averaged over about the
    # last 5,000 steps (a sixth of the run, as the demo's 0.999 is about a seventh of
    # its 7,500): with the demo's 0.999 the same run read 4.12, worse than the demo.
    # Figures: docs/results.md, "`fast` in 20 minutes".
    "fast": Preset(
        "infogan-nets",
        dict(epochs=16, batch_size=32, base_filters=32, jit_compile="on", ema=0.9998),
        "the demo's networks on all the images for four times as long",
    ),
    # Seconds, for tests: a tiny model on a few hundred images.
    "smoke": Preset(
        "dcgan", dict(epochs=2, batch_size=32, limit=256, base_filters=8), "a tiny run for tests"
    ),
}


# The settings some preset or family recipe sets (a resumed run's note compares them).
PRESET_FIELDS = tuple(
    dict.fromkeys(
        k
        for settings in (
            *(p.settings for p in PRESETS.values()),
            *(f.defaults for f in FAMILIES.values()),
            *(r for f in FAMILIES.values() for r in f.recipes.values()),
        )
        for k in settings
    )
)


def measured_models(preset: str) -> list[str]:
    """The families ``preset`` trains: its own, those with a recipe for it (each measured,
    docs/results.md), and every family for `smoke`, the tests' run."""
    if preset == "smoke":
        return list(FAMILIES)
    own = PRESETS[preset].model
    return [own, *(name for name, f in FAMILIES.items() if preset in f.recipes and name != own)]


def preset_values(preset: str, model: str) -> dict[str, Any]:
    """The settings of ``preset`` for the model family ``model``: the family's
    defaults, then the preset's settings, or the family's own recipe for it.

    Raises:
        UserError: a family the preset has never been measured with.
    """
    own, family = PRESETS[preset], FAMILIES.get(model)
    if family is None:  # an unknown --model: TrainConfig refuses it, naming the choices
        return dict(own.settings)
    if model not in measured_models(preset):
        pairs = "; ".join(
            f"--preset {name}: {', '.join(measured_models(name))}"
            for name in PRESETS
            if name != "smoke"
        )
        raise UserError(
            f"--preset {preset} was never trained with --model {model} here, so it has no "
            f"settings for it. The measured combinations are {pairs} (and --preset smoke, "
            "the tests' tiny run, with every family). Choose one of them; flags given with "
            "it change its settings."
        )
    recipe = own.settings if model == own.model else family.recipes.get(preset, own.settings)
    return {**family.defaults, **recipe}


def make_config(preset: str = "tutorial", **overrides: Any) -> TrainConfig:
    """The preset's settings for the chosen model, with ``overrides`` (None values
    are ignored) on top."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("data"):  # found again from anywhere (a resume, evaluate, the app)
        given["data"] = str(Path(given["data"]).resolve())
        if "dataset" not in given and is_image_folder(given["data"]):
            given["dataset"] = IMAGES  # a folder of images is its own data set
    model = given.get("model", PRESETS[preset].model)
    return TrainConfig(**{**preset_values(preset, model), "model": model, **given})
