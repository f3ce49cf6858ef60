"""The project's exception tree: one base, so a caller can tell the grader's own errors from a bug.

Three families, by who is responsible:

* :class:`ConfigError` -- a course file (an assignment's ``config.toml`` or ``checks.py``, a grades
  CSV, a roster) or a command line is wrong. The command line turns it into exit status 2, in one
  place (``grader/run/cli.py``), before anything is graded.
* :class:`KernelError` -- what the student's kernel did, seen from the grader: a name it does not
  define, an exception its code raised, a call that did not finish, a crash, a reply that could not
  be read. Checks let these propagate; ``grader/checking/verdicts.py`` turns each into a status and a sentence.
* :class:`EnvironmentProblem` -- the machine, not the student, stopped the work (a kernel that
  cannot start, a sandbox that cannot be built). Never charged to a student.

The verdict signals a check raises (``Fail``, ``ForTA``, ``NotGraded`` in ``grader/checking/assertions.py``)
derive from :class:`Verdict`: they are not failures of the grader but its way of saying what it found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotations only: this module imports nothing of the grader
    from grader.results import QuestionStatus


class GraderError(Exception):
    """Base of every exception the grader defines."""


class ConfigError(GraderError, ValueError):
    """A course file or a command line is wrong; the message names the file (and the key) to change.

    A ``ValueError`` too, so callers written before this tree still catch it.
    """


class KernelError(GraderError):
    """Something the student's kernel did, as seen from the grader (see ``grader/kernel/protocol.py``)."""


class BridgeError(KernelError):
    """The kernel sent no usable reply (tampered bridge, garbled output). Here, not in ``grader/kernel/failures.py``:
    the sandbox's tensor folder (``grader/sandbox/files.py``), below the kernel, raises it too."""


class EnvironmentProblem(GraderError, RuntimeError):
    """The grader's environment (not the notebook) stopped the work: said loudly, never charged."""


class Verdict(GraderError):
    """Raised by a check to end a question with a verdict other than a pass (see ``grader/checking/assertions.py``)."""

    # Set by every subclass (a class attribute or in __init__); declared here for the code that catches a Verdict.
    status: QuestionStatus
    message: str
    details: dict[str, Any]
