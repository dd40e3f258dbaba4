"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """Bad input (a flag, a path, a data file): the message says what and how to fix it.

    The CLI prints it as one paragraph and exits non-zero, without a traceback.
    """


def first_line(error: BaseException, limit: int = 160) -> str:
    """An exception's message for a one-paragraph error: its first line, cut at
    ``limit`` characters, or its repr when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else repr(error)


def check_run_dir(run_dir) -> None:
    """Refuse a run folder that does not exist (cheap: no TensorFlow needed)."""
    from pathlib import Path

    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir} is not a folder. Pass the --out folder of a training run.")


def write_failure(error: OSError, path, then: str) -> UserError:
    """A failed write as a `UserError` whose advice fits its cause (a full disk, a
    folder without permission or read-only, or something else), ending in ``then``."""
    import errno

    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = "Free some space or choose another folder"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "Choose a folder you can write to (or fix this one's permissions)"
    else:
        advice = "Check the path and the disk"
    return UserError(f"cannot write {error.filename or path}: {reason}. {advice}; {then}")
