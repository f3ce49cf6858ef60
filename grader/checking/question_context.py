"""What a check knows about its question: built fresh for every question and passed to the check explicitly.

A check is ``check_<id>(sub, ctx)`` (or ``check_<id>(sub)`` when it needs nothing of its question). The
context carries the question's validated options, the budget it is graded under, where the data set is,
and the verdicts of the questions it ``requires`` -- and only those, so a check that reads an earlier
verdict says so in the config, where ``grade check-assignment`` can see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from grader.course.question_options import requires_of
from grader.errors import ConfigError
from grader.results import QuestionResult


@dataclass(frozen=True)
class QuestionContext:
    """Read-only facts about one question, for its check."""

    question_id: str
    #: The question's options from ``config.toml`` (validated at load: ``grader/course/question_options.py``).
    options: Mapping[str, Any]
    #: ``quick`` or ``full``.
    budget: str
    #: The assignment's ``[budgets.<budget>]`` table.
    budget_settings: Mapping[str, Any]
    #: The Fashion-MNIST folder the grader reads (the kernel sees only its own view of it).
    data_dir: str
    _required: Mapping[str, QuestionResult] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def verdict(self, question_id: str) -> QuestionResult | None:
        """The verdict of a question this one ``requires`` (None: it was not run here, e.g. hidden).

        Asking for a question the config does not list under ``requires`` is an error in the checks,
        not in the notebook: the ordering it would rely on is written nowhere.
        """
        if question_id not in requires_of(self.options):
            raise ConfigError(
                f"the check of {self.question_id!r} reads the verdict of {question_id!r}; "
                f"add requires = {question_id!r} to its question in config.toml"
            )
        return self._required.get(question_id)


def context_for(
    question_id: str,
    options: Mapping[str, Any],
    budget: str,
    budgets: Mapping[str, Any],
    data_dir: str,
    verdicts: Mapping[str, QuestionResult],
) -> QuestionContext:
    """A question's context; ``verdicts``: every question graded so far (only the required ones are kept)."""
    required = {q: verdicts[q] for q in requires_of(options) if q in verdicts}
    return QuestionContext(
        question_id,
        MappingProxyType(dict(options)),
        budget,
        MappingProxyType(dict(budgets.get(budget, {}))),
        data_dir,
        MappingProxyType(required),
    )
