"""What can go wrong, each with its one line for the user and its fixed exit code."""

from pathlib import Path

FAILED = 1        # the server refused something, or a conversion failed; its reason is printed
UNREACHABLE = 2   # the gateway did not answer
NOT_LOGGED_IN = 3
USAGE = 64        # a bad command line (sysexits' EX_USAGE)
INTERRUPTED = 130


class Mp3cError(Exception):
    exit_code = FAILED


class Refused(Mp3cError):
    """The gateway answered with an error; the message is its own."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ConversionFailed(Mp3cError):
    """The job ended as failed; the message is the server's reason."""


class Unreachable(Mp3cError):
    exit_code = UNREACHABLE


class NotLoggedIn(Mp3cError):
    exit_code = NOT_LOGGED_IN

    def __init__(self):
        super().__init__("Not logged in, or the login expired: run mp3c login.")


class Cancelled(Exception):
    """Ctrl-C: work in flight stops."""


def cannot_save(where: Path, error: OSError) -> Mp3cError:
    return Mp3cError(f"Cannot save into {where}: {error.strerror or error}.")
