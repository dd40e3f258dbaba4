"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """Bad input (a flag, a path, a data file): the message says what and how to fix it.

    The CLI prints it as one paragraph and exits non-zero, without a traceback.
    """


def check_run_dir(run_dir) -> None:
    """Refuse a run folder that does not exist (cheap: no TensorFlow needed)."""
    from pathlib import Path

    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir} is not a folder. Pass the --out folder of a training run.")
