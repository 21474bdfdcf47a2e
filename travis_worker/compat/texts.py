"""User-facing texts written into job logs. Byte-for-byte those of travis-ci/worker:
travis-web and users' log scrapers match on them, so they are not ours to reword. The few
texts of our own (for cases the Go worker never reported) are marked as such."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from travis_worker.compat.durations import format_go_duration

HARD_TIMEOUT = "\n\nThe job exceeded the maximum time limit for jobs, and has been terminated.\n\n"
MAX_LOG_LENGTH = "\n\nThe job exceeded the maximum log length, and has been terminated.\n\n"
SCRIPT_GENERATION_FAILED = "An error occurred while generating the build script."
# "occured" (sic) is the text users have seen for years.
JOB_CONFIG_UNPARSABLE = (
    "An error occured while parsing the job config. Please consider enabling the build "
    "config validation feature for the repository: "
    "https://docs.travis-ci.com/user/build-config-validation"
)
# Ours: travis-ci/worker stops a job silently when it shuts down.
WORKER_SHUTDOWN = (
    "\n\nThe worker running this job is shutting down: the job has been stopped and "
    "will be restarted.\n\n"
)


def payload_unusable(problems: Iterable[object]) -> str:
    """Ours: the job payload has values the run needs but cannot use. travis-ci/worker
    dropped such a delivery without a word, leaving the job queued forever."""
    listed = "; ".join(str(problem) for problem in problems)
    return f"An error occurred while reading the job payload: {listed}. The job was not run."


ANSI_YELLOW = "\033[33;1m"
ANSI_RESET = "\033[0m"
ANSI_CLEAR = "\033[0K"


def cancelled(reason: str) -> str:
    """The text written when a `cancel_job` command stops the job."""
    return f"\n\nDone: Job Cancelled\n\n{reason}"


def log_silence(timeout: timedelta) -> str:
    """The text written when the job printed nothing for `timeout`."""
    return (
        f"\n\nNo output has been received in the last {format_go_duration(timeout)}, "
        "this potentially indicates a stalled build or something wrong with the build "
        "itself.\nCheck the details on how to adjust your build configuration on: "
        "https://docs.travis-ci.com/user/common-build-problems/"
        "#build-times-out-because-no-output-was-received\n\nThe build has been terminated\n\n"
    )


def image_tag_abort(tag: str) -> str:
    """The text written when a `.travis.yml` trailing comma produced an unusable tag."""
    return (
        f'job was aborted because tag "{tag}" contained ",", '
        "this can happen when .travis.yml has a trailing comma"
    )


def fold(name: str, body: str) -> str:
    """A travis_fold block as travis-web folds it: start marker, body, end marker."""
    if not body.endswith("\n"):
        body += "\n"
    return f"travis_fold:start:{name}\r{ANSI_CLEAR}{body}travis_fold:end:{name}\r{ANSI_CLEAR}"


def fold_start(name: str, title: str) -> str:
    """The opening of a worker step fold with a yellow title (`Starting instance`)."""
    return f"travis_fold:start:{name}\r{ANSI_CLEAR}{ANSI_YELLOW}{title}{ANSI_RESET}\r\n"


def fold_end(name: str) -> str:
    """The closing marker of a worker step fold."""
    return f"travis_fold:end:{name}\r{ANSI_CLEAR}"
