"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """Bad input (a flag, a path, a data file): the message says what and how to fix it.

    The CLI prints it as one paragraph and exits non-zero, without a traceback.
    """
