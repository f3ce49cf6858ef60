"""One notebook's time limit (``--timeout``), shared by its cells, its checks and whatever they ask the kernel.

Why one clock: a cell's own limit and a check call's own limit each bound one step, but a notebook with many
steps -- forty slow calls from a property check, a dozen questions each waiting on a stuck kernel -- could
still keep its grading process for many times the limit a TA set. So the limit is a deadline, fixed when the
grading of the notebook starts, and every step is given at most the time left:

* the cells may use the limit less :data:`CHECK_SHARE` of it (the time kept for checking their answers);
* each question's check may use what is left, less a reserve for each question after it, so a question
  whose calls hang costs its own points, never the time of the honest questions after it;
* a call into the kernel is given ``min(its own limit, time left to its question)``.

When time runs out the question says so, and says who used it: the student's code (cells and calls into
it), which is charged, or the grader's own work, which is never charged (``environment``: a TA regrades with
a longer ``--timeout``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

#: The share of the limit kept for the checks: the cells may run until the rest is used.
CHECK_SHARE = 0.2
#: At most this many seconds are kept for each question still to be checked after the current one.
RESERVE_PER_QUESTION = 10.0


@dataclass
class Deadline:
    """The clock of one notebook's grading: ``seconds`` from ``start`` (``time.monotonic``)."""

    seconds: float
    start: float = field(default_factory=time.monotonic)
    #: When the current question's check must end (set by :meth:`begin_question`); the notebook's end before.
    question_end: float = 0.0
    #: Seconds the checks' calls spent running the student's code (the kernel was busy with it).
    call_seconds: float = 0.0
    #: Seconds the notebook's cells ran (set once they have).
    cell_seconds: float = 0.0
    #: Seconds of ``call_seconds`` spent by the current question's check.
    question_call_seconds: float = 0.0
    question_start: float = 0.0

    def __post_init__(self) -> None:
        self.question_end = self.end

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def cells_end(self) -> float:
        """When the cells must have ended: the checks keep :data:`CHECK_SHARE` of the limit."""
        return self.start + self.seconds * (1 - CHECK_SHARE)

    def left(self, until: float | None = None) -> float:
        return (self.question_end if until is None else until) - time.monotonic()

    def begin_question(self, questions_after: int) -> None:
        """Start the clock of one question's check; ``questions_after`` still wait for theirs."""
        now = time.monotonic()
        left = max(0.0, self.end - now)
        reserve = min(RESERVE_PER_QUESTION, left / (2 * (questions_after + 1)))
        self.question_start, self.question_end = now, self.end - questions_after * reserve
        self.question_call_seconds = 0.0

    def spent_calling(self, seconds: float) -> None:
        self.call_seconds += seconds
        self.question_call_seconds += seconds

    def out_of_time(self, before_start: bool) -> tuple[bool, str]:
        """Whether the student is charged for a question not checked in time, and the sentence that says why.

        ``before_start``: the notebook's time was gone before the question's check began (the cells, or
        the checks before it, used it); otherwise the question's own check ran out of its share.
        """
        limit = f"{self.seconds:g} s"
        if before_start:
            student = self.cell_seconds + self.call_seconds
            charged = student >= self.seconds / 2
            used = (
                f"your notebook's code used {student:.0f} s of the notebook's {limit} limit"
                f" (cells {self.cell_seconds:.0f} s, calls from the checks {self.call_seconds:.0f} s)"
            )
            if charged:
                return True, f"not checked: the time ran out before this question's turn — {used}; make the slow cells or functions faster"
            return False, (
                f"not graded: the grader's own work used the notebook's {limit} limit before this question's turn ({used});"
                " a TA regrades it with a longer --timeout"
            )
        window = max(self.question_end - self.question_start, 0.001)
        charged = self.question_call_seconds >= window / 2
        used = f"{self.question_call_seconds:.0f} s of its {window:.0f} s went to running your code"
        if charged:
            return True, f"your code did not finish in the time left to check this question ({used}); make it faster"
        return False, f"not graded: the grader's own work used this question's time ({used}); a TA regrades it with a longer --timeout"
