"""The two kinds of failure the CLI reports, each with a message that says what to do."""


class RunbookError(Exception):
    """A usage or configuration problem: a bad parameter, an unreadable runbook, no database.

    The CLI prints the message alone (no traceback) and exits 2.
    """

    exit_code = 2


class GateFailed(AssertionError):
    """A gate refused to go on: the data or the schema is not in a state the stage can handle.

    Notebooks raise it through a plain ``assert``; the runner reports the message and exits 1.
    """

    exit_code = 1
