"""Errors reforge reports as one line and exit code 2, never as a traceback."""


class UsageError(Exception):
    """Bad input found before anything runs: the message is shown as is."""


class RunError(Exception):
    """ansible-runner could not start the run: shown as one line, exit code 1."""
