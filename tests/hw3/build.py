"""HW3 notebooks that are wrong the way students get them wrong, built from the solution (issue 20).

Each :class:`Defect` is the solution with one realistic mistake, written as the exact text a student would
change (every ``old`` must occur exactly once in the solution, so a change to the solution that moves the
code fails here loudly instead of building a notebook that is secretly right), and the questions the
mistake must fail: the ones whose check exercises the wrong code, and the ones that ``require`` those.
Every other question must pass. ``tests/test_hw3.py`` grades them all as one batch.

``python tests/hw3/build.py OUT`` writes them to ``OUT`` to open or grade by hand.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
SOLUTION = REPO / "assignments" / "hw3" / "solution.ipynb"

#: The batch_norm line the running-statistics defects rewrite.
RUNNING_VAR = "        moving_var = (1.0 - momentum) * moving_var + momentum * var * m / (m - 1)"
RUNNING_MEAN = "        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean"
#: What a mistake in ``batch_norm`` breaks besides its own question: the layer that calls it, the LeNet built
#: from that layer, and the LeNet's training question, which requires the LeNet's.
THROUGH_THE_LAYER = ("batchnorm_layer", "bn_lenet_arch", "bn_lenet_train")


@dataclass(frozen=True)
class Defect:
    stem: str
    #: The mistake in the student's words.
    story: str
    #: (old, new) source replacements, each ``old`` found exactly once in the solution's code cells.
    edits: tuple[tuple[str, str], ...]
    #: The questions it must not pass (every other auto-graded question passes).
    fails: frozenset[str]
    #: Per question, a word the message must contain: the evidence a student needs.
    says: tuple[tuple[str, str], ...] = ()
    #: Questions that may fail or pass: the mistake shows there only statistically (a training check, whose
    #: initial weights are drawn anew in every run), so neither verdict is wrong.
    may_fail: frozenset[str] = frozenset()


DEFECTS: tuple[Defect, ...] = (
    Defect(
        "bn_biased_running_var",
        "copies the book's running update: the running variance keeps the biased batch variance",
        ((RUNNING_VAR, "        moving_var = (1.0 - momentum) * moving_var + momentum * var"),),
        frozenset({"batch_norm_running", *THROUGH_THE_LAYER}),
        (("batch_norm_running", "unbiased"),),
    ),
    Defect(
        "bn_momentum_swapped",
        "applies momentum the wrong way round: the old estimate gets weight `momentum`, the batch `1 - momentum`",
        (
            (
                f"{RUNNING_MEAN}\n{RUNNING_VAR}",
                "        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean\n"
                "        moving_var = momentum * moving_var + (1.0 - momentum) * var * m / (m - 1)",
            ),
        ),
        frozenset({"batch_norm_running", *THROUGH_THE_LAYER}),
        (("batch_norm_running", "moving_mean"),),
    ),
    Defect(
        "bn_unbiased_normalize",
        "normalizes with torch's X.var(), which is the unbiased variance (and so skips the correction of the running one)",
        (
            ("            var = ((X - mean) ** 2).mean(dim=0)", "            var = X.var(dim=0)"),
            (
                "            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)",
                "            var = X.var(dim=(0, 2, 3), keepdim=True)",
            ),
            (RUNNING_VAR, "        moving_var = (1.0 - momentum) * moving_var + momentum * var"),
        ),
        frozenset({"batch_norm_forward", "batch_norm_grad", *THROUGH_THE_LAYER}),
        (("batch_norm_forward", "training mode"),),
    ),
    Defect(
        "bn_mode_from_grad",
        "keeps the book's mode switch, torch.is_grad_enabled(), and ignores `training`",
        (("    if not training:", "    if not torch.is_grad_enabled():"),),
        frozenset({"batch_norm_forward", *THROUGH_THE_LAYER}),
        (("batch_norm_forward", "evaluation mode"),),
    ),
    Defect(
        "bn_detached_statistics",
        'takes the batch statistics from X.detach() ("they are not parameters"): the forward pass is right, the gradient is not',
        (
            (
                "            mean = X.mean(dim=0)\n            var = ((X - mean) ** 2).mean(dim=0)",
                "            mean = X.detach().mean(dim=0)\n            var = ((X.detach() - mean) ** 2).mean(dim=0)",
            ),
            (
                "            mean = X.mean(dim=(0, 2, 3), keepdim=True)\n"
                "            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)",
                "            mean = X.detach().mean(dim=(0, 2, 3), keepdim=True)\n"
                "            var = ((X.detach() - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)",
            ),
        ),
        frozenset({"batch_norm_grad"}),
        (("batch_norm_grad", "gradient"),),
        # measured (4 seeds, 20 Adam steps): its loss falls 0.56-0.66 as far as the reference's (0.7 is needed)
        may_fail=frozenset({"bn_lenet_train"}),
    ),
    Defect(
        "dense_cat_default_dim",
        "concatenates a dense block's input and output without dim=1 (torch.cat's default is the batch dimension)",
        (("            X = torch.cat((X, Y), dim=1)", "            X = torch.cat((X, Y))"),),
        frozenset({"dense_block", "densenet_arch", "densenet_train"}),
        (("dense_block", "cat"),),
    ),
    Defect(
        "transition_without_conv",
        "leaves the 1x1 convolution out of the transition block (it only pools)",
        (("        nn.LazyConv2d(num_channels, kernel_size=1),\n        nn.AvgPool2d", "        nn.AvgPool2d"),),
        frozenset({"transition_block", "densenet_arch", "densenet_train"}),
        (("transition_block", "transition_block"),),
    ),
    Defect(
        "inception_branches_swapped",
        "concatenates the Inception branches in the order b1, b3, b2, b4",
        (("        return torch.cat((b1, b2, b3, b4), dim=1)", "        return torch.cat((b1, b3, b2, b4), dim=1)"),),
        frozenset({"inception", "inception_unusual"}),
        (("inception", "Inception"),),
    ),
    Defect(
        "nin_block_last_relu_missing",
        "forgets the ReLU after the last 1x1 convolution of a NiN block",
        (("        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())", "        nn.LazyConv2d(out_channels, kernel_size=1))"),),
        frozenset({"nin_block", "nin_arch"}),
        (("nin_block", "nin_block"),),
    ),
    Defect(
        "exercise_answers_wrong",
        "counts a dense block without its batch normalizations' gamma and beta, and divides the side by 32 directly",
        (
            (
                "ANSWER_DENSE_BLOCK_PARAMS = '(9*g + 2) * (m*c + g*m*(m - 1)/2) + m*g'",
                "ANSWER_DENSE_BLOCK_PARAMS = '9*g * (m*c + g*m*(m - 1)/2) + m*g'",
            ),
            ("ANSWER_DENSENET_SIDE = 'floor((n + 3) / 32)'", "ANSWER_DENSENET_SIDE = 'n // 32'"),
        ),
        frozenset({"ex_dense_block_params", "ex_densenet_side"}),
        (("ex_dense_block_params", "ANSWER_DENSE_BLOCK_PARAMS"), ("ex_densenet_side", "ANSWER_DENSENET_SIDE")),
    ),
)


def build(defect: Defect, solution: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The solution with ``defect``'s edits; raises ``ValueError`` when an edit does not match exactly once."""
    notebook = copy.deepcopy(solution if solution is not None else nbformat.read(SOLUTION, as_version=4))
    for old, new in defect.edits:
        where = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        count = sum(cell.source.count(old) for cell in where)
        if count != 1:
            raise ValueError(f"{defect.stem}: {old!r} occurs {count} times in the solution's code (expected once)")
        where[0].source = where[0].source.replace(old, new)
    notebook.metadata.setdefault("grader", {})["defect"] = defect.story
    return notebook


def write_all(folder: Path) -> list[Path]:
    """Every defect's notebook in ``folder`` (``<stem>.ipynb``)."""
    folder.mkdir(parents=True, exist_ok=True)
    solution = nbformat.read(SOLUTION, as_version=4)
    paths = []
    for defect in DEFECTS:
        path = folder / f"{defect.stem}.ipynb"
        nbformat.write(build(defect, solution), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "hw3_wrong")):
        print(written)
