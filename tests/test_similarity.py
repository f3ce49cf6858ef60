"""Similarity across a class (grader/integrations/similarity.py): own code only, renames and reordering seen through.

No notebook is graded here: the module's functions get code cells directly
(the fixtures' and the assignment's notebooks are only read), and the class
summary is drawn from hand-made results.
"""

from __future__ import annotations

import csv
import io
import keyword
import random
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from grader import results as r
from grader.integrations import similarity as sim
from grader.reports.class_summary import write_summary

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "submissions"
SOLUTION = REPO / "assignments" / "hw2" / "solution.ipynb"
TEMPLATE = REPO / "assignments" / "hw2.ipynb"

# Two students' own answers, written independently: one with loops, one vectorised.
OWN_LOOPS = {
    "corr2d": """def corr2d(X, K):  #@save
    rows, cols = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    out = torch.empty(rows, cols)
    for r in range(rows):
        for c in range(cols):
            window = X[r:r + K.shape[0], c:c + K.shape[1]]
            out[r, c] = torch.sum(window * K)
    return out""",
    "pool2d": """def pool2d(X, pool_size, mode='max'):
    ph, pw = pool_size
    out = torch.empty(X.shape[0] - ph + 1, X.shape[1] - pw + 1)
    reduce = torch.amax if mode == 'max' else torch.mean
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = reduce(X[r:r + ph, c:c + pw])
    return out""",
    "corr2d_multi_in": """def corr2d_multi_in(X, K):
    total = None
    for channel in range(X.shape[0]):
        part = corr2d(X[channel], K[channel])
        total = part if total is None else total + part
    return total""",
    "corr2d_multi_in_out": """def corr2d_multi_in_out(X, K):
    outputs = []
    for kernel in K:
        outputs.append(corr2d_multi_in(X, kernel))
    return torch.stack(outputs, dim=0)""",
    "vgg_block": """def vgg_block(num_convs, out_channels):
    modules = []
    while len(modules) < 2 * num_convs:
        modules += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
    return nn.Sequential(*modules, nn.MaxPool2d(kernel_size=2, stride=2))""",
    "comp_conv2d": """def comp_conv2d(conv2d, X):
    batched = X.unsqueeze(0).unsqueeze(0)
    result = conv2d(batched)
    return result.squeeze(0).squeeze(0)

conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1)
X = torch.rand(size=(8, 8))
comp_conv2d(conv2d, X).shape""",
}
OWN_VECTORISED = {
    "corr2d": """def corr2d(X, K):  #@save
    kh, kw = K.shape
    patches = X.unfold(0, kh, 1).unfold(1, kw, 1)
    return torch.einsum('ijkl,kl->ij', patches, K)""",
    "pool2d": """def pool2d(X, pool_size, mode='max'):
    patches = X.unfold(0, pool_size[0], 1).unfold(1, pool_size[1], 1)
    flat = patches.reshape(*patches.shape[:2], -1)
    return flat.max(dim=-1).values if mode == 'max' else flat.mean(dim=-1)""",
    "corr2d_multi_in": """def corr2d_multi_in(X, K):
    return torch.stack([corr2d(x, k) for x, k in zip(X, K)]).sum(dim=0)""",
    "corr2d_multi_in_out": """def corr2d_multi_in_out(X, K):
    return torch.cat([corr2d_multi_in(X, k).unsqueeze(0) for k in K])""",
    "vgg_block": """def vgg_block(num_convs, out_channels):
    convs = [layer for _ in range(num_convs)
             for layer in (nn.LazyConv2d(out_channels, 3, padding=1), nn.ReLU())]
    convs.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*convs)""",
    "comp_conv2d": """def comp_conv2d(conv2d, X):
    Y = conv2d(X[None, None])
    return Y[0, 0]

conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1)
X = torch.rand(size=(8, 8))
comp_conv2d(conv2d, X).shape""",
}


def template_cells() -> list[str]:
    return sim.code_cells(TEMPLATE)


def references() -> list[list[str]]:
    return [sim.code_cells(SOLUTION), template_cells()]


def with_own_code(own: dict[str, str]) -> list[str]:
    """The template's code cells, each cell defining one of ``own``'s names replaced by the student's answer."""
    cells = []
    for cell in template_cells():
        name = next((n for n in own if f"def {n}(" in cell), None)
        cells.append(own[name] if name else cell)
    assert sum(c in own.values() for c in cells) == len(own)
    return cells


def renamed_and_reordered(cells: list[str]) -> list[str]:
    """Every identifier (not keywords, not builtins) renamed consistently, comments dropped, cells in reverse order."""
    names: dict[str, str] = {}
    out = []
    for cell in cells:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(sim.strip_magics(cell)).readline))
        except (tokenize.TokenError, SyntaxError):
            out.append(cell)
            continue
        rewritten = []
        for tok in tokens:
            text = tok.string
            if tok.type == tokenize.NAME and not keyword.iskeyword(text) and text not in sim._BUILTINS:
                text = names.setdefault(text, f"q{len(names)}_z")
            if tok.type != tokenize.COMMENT:
                rewritten.append((tok.type, text))
        out.append(tokenize.untokenize(rewritten))
    return out[::-1]


def fixture(name: str) -> list[str]:
    return sim.code_cells(FIXTURES / f"{name}.ipynb")


def test_a_renamed_and_reordered_copy_ranks_first_and_is_flagged():
    original = with_own_code(OWN_LOOPS)
    copy = renamed_and_reordered(original)
    assert copy != original[::-1]  # really renamed
    class_ = [
        ("loops", original),
        ("vectorised", with_own_code(OWN_VECTORISED)),
        ("student_a", fixture("student_a")),
        ("student_b", fixture("student_b")),
        ("copy", copy),
    ]
    pairs = sim.compare(class_, references())
    assert {pairs[0].submission_a, pairs[0].submission_b} == {"loops", "copy"}
    assert pairs[0].flagged and pairs[0].similarity == pytest.approx(1.0)
    assert not any(p.flagged for p in pairs[1:])


def test_the_two_independent_fixture_hand_ins_are_not_flagged():
    (pair,) = sim.compare([("student_a", fixture("student_a")), ("student_b", fixture("student_b"))], references())
    assert not pair.flagged and pair.similarity < sim.FLAG_THRESHOLD / 2


def test_two_copies_of_the_bare_template_have_similarity_zero():
    (pair,) = sim.compare([("one", template_cells()), ("two", template_cells())], references())
    assert (pair.similarity, pair.shared, pair.flagged) == (0.0, 0, False)


def test_without_the_references_the_bare_template_would_look_copied():
    """The exclusion is what keeps the template from counting: compared without it, two templates match fully."""
    (pair,) = sim.compare([("one", template_cells()), ("two", template_cells())], references=[])
    assert pair.flagged and pair.similarity == pytest.approx(1.0)


def test_the_template_with_different_own_code_is_not_flagged():
    (pair,) = sim.compare([("loops", with_own_code(OWN_LOOPS)), ("vectorised", with_own_code(OWN_VECTORISED))], references())
    assert not pair.flagged and pair.similarity < sim.FLAG_THRESHOLD / 2


def test_shell_and_magic_lines_do_not_count():
    own = with_own_code(OWN_LOOPS)
    noisy = ["!pip install d2l==1.0.3\n%matplotlib inline\n" + cell for cell in own]
    assert sim.fingerprint("a", own).where.keys() == sim.fingerprint("b", noisy).where.keys()


def test_similarity_csv_has_the_columns_and_is_most_similar_first():
    original = with_own_code(OWN_LOOPS)
    pairs = sim.compare(
        [("loops", original), ("vectorised", with_own_code(OWN_VECTORISED)), ("copy", renamed_and_reordered(original))], references()
    )
    rows = list(csv.reader(io.StringIO(sim.similarity_csv(pairs))))
    assert rows[0] == ["submission_a", "submission_b", "similarity", "flagged", "reason"]
    assert len(rows) == 1 + 3
    values = [float(row[2]) for row in rows[1:]]
    assert values == sorted(values, reverse=True)
    assert rows[1][:2] == ["loops", "copy"] and rows[1][3:] == ["yes", "similar code"]
    assert {tuple(row[3:]) for row in rows[2:]} == {("no", "")}


def test_similarity_csv_neutralises_formula_like_names():
    pairs = [sim.Pair("=cmd|calc", "+1", 0.9, True, 50), sim.Pair("@sum", "-2", 0.1, False, 5), sim.Pair("\tx", "ok", 0.0, False, 0)]
    rows = list(csv.reader(io.StringIO(sim.similarity_csv(pairs))))
    assert [row[:2] for row in rows[1:]] == [["'=cmd|calc", "'+1"], ["'@sum", "'-2"], ["'\tx", "ok"]]


def test_class_similarity_writes_the_csv_and_excludes_the_assignments_notebooks(tmp_path):
    from grader.course.assignment import load_assignment
    from grader.run.batch import Job

    hw2 = load_assignment("hw2")
    jobs = []
    for stem, cells in [("bare", template_cells()), ("solution", sim.code_cells(SOLUTION)), ("loops", with_own_code(OWN_LOOPS))]:
        path = tmp_path / f"{stem}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
        jobs.append(Job(path, stem, hw2, "", tmp_path / f"{stem}.json"))
    pairs = sim.class_similarity(jobs, tmp_path / "similarity.csv")
    assert len(pairs) == 3 and all(p.similarity == 0.0 for p in pairs)
    assert (tmp_path / "similarity.csv").read_text(encoding="utf-8").startswith("submission_a,submission_b,similarity,flagged,reason\n")


def test_a_failure_in_similarity_never_fails_the_batch(monkeypatch, capsys, tmp_path):
    from grader.run import outputs

    def broken(jobs, target, results=None):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(sim, "class_similarity", broken)
    assert outputs.similarity([], tmp_path) is None
    err = capsys.readouterr().err
    assert "warning" in err and "disk on fire" in err and len(err.strip().splitlines()) == 1


def test_a_batchs_outputs_hold_the_csv_and_the_summary_shows_the_pairs(tmp_path, capsys):
    """The coordinator's ``outputs.write_outputs`` (grading itself is not run: the results are made by hand)."""
    from grader.course.assignment import load_assignment
    from grader.run import outputs
    from grader.run.batch import Job
    from grader.run.settings import RunRequest, RunSettings

    hw2 = load_assignment("hw2")
    original = with_own_code(OWN_LOOPS)
    jobs, results = [], {}
    for stem, cells in [("loops", original), ("vectorised", with_own_code(OWN_VECTORISED)), ("copy", renamed_and_reordered(original))]:
        path = tmp_path / "subs" / f"{stem}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
        jobs.append(Job(path, stem, hw2, "", tmp_path / f"{stem}.json"))
        results[stem] = summary_result(stem)
    request = RunRequest(paths=(str(tmp_path / "subs"),), out=tmp_path)
    outputs.write_outputs(RunSettings(request, "cpu", "quick", tmp_path), jobs, results)
    rows = list(csv.reader((tmp_path / "similarity.csv").open(encoding="utf-8")))
    assert rows[1] == ["loops", "copy", "1.000", "yes", "similar code"]
    assert '<pre class="match-b">' in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "similarity.csv (1 flagged)" in capsys.readouterr().out


def test_an_assignments_config_can_set_the_flag_threshold():
    assert sim.threshold_of("[similarity]\nflag_threshold = 0.7\n") == 0.7
    assert sim.threshold_of('name = "hw2"\n') == sim.FLAG_THRESHOLD


def summary_result(stem: str) -> r.GradeResult:
    return r.GradeResult(
        submission=f"subs/{stem}.ipynb",
        sha256="0" * 64,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        execution=r.ExecutionRecord("ok", ""),
        questions=[r.QuestionResult("corr2d", "corr2d", "pass", 2.0, 2.0, "", {}, "7.2")],
    )


def test_the_summary_shows_the_top_pair_with_both_sides_matching_code(tmp_path):
    own = dict(OWN_LOOPS, corr2d=OWN_LOOPS["corr2d"].replace("(window * K)", "(window * K)  # </pre><script>alert(1)</script>"))
    original = with_own_code(own)
    pairs = sim.compare(
        [("loops", original), ("vectorised", with_own_code(OWN_VECTORISED)), ("copy", renamed_and_reordered(original))], references()
    )
    results = [(summary_result(stem), tmp_path / f"{stem}.json") for stem in ("loops", "vectorised", "copy")]
    assert write_summary(results, tmp_path / "index.html", similarity=pairs)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="similarity">') :]
    first = section[section.index('<details class="pair" open>') :].split("</details>")[0]
    assert "loops" in first[: first.index("</summary>")] and "copy" in first[: first.index("</summary>")]
    sides_a = re.findall(r'<pre class="match-a">(.*?)</pre>', first, re.S)
    sides_b = re.findall(r'<pre class="match-b">(.*?)</pre>', first, re.S)
    assert len(sides_a) == len(sides_b) >= 3
    assert any("out[r, c] = torch.sum(window * K)" in code for code in sides_a)  # the original's own code
    assert all("_z" in code and "torch" not in code for code in sides_b)  # beside it, the renamed copy's
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert page.count("<script") == 1  # still the one nonce'd script of the page


def synthetic_class(count: int = 300, seed: int = 0, copies: int = 5) -> list[tuple[str, list[str]]]:
    """``count`` notebooks: the template with randomly generated own code (about a real hand-in's size), a few renamed copies."""
    rng = random.Random(seed)
    template = template_cells()
    calls = ["torch.zeros", "torch.stack", "nn.LazyConv2d", "len", "range", "sum", "zip", "max", "min", "abs", "sorted", "enumerate"]
    ops = ["+", "-", "*", "/", "//", "%", "@", "**"]

    def expression(depth: int) -> str:
        choice = rng.randrange(6 if depth else 3)
        if choice == 0:
            return f"v{rng.randrange(30)}"
        if choice == 1:
            return str(rng.randrange(100)) if rng.random() < 0.7 else repr(rng.random())[:5]
        if choice == 2:
            return f"v{rng.randrange(30)}.shape[{rng.randrange(3)}]"
        if choice == 3:
            return f"({expression(depth - 1)} {rng.choice(ops)} {expression(depth - 1)})"
        if choice == 4:
            return f"{rng.choice(calls)}({', '.join(expression(depth - 1) for _ in range(rng.randrange(1, 4)))})"
        return f"[{expression(depth - 1)} for v{rng.randrange(30)} in {rng.choice(['range', 'enumerate', 'zip'])}({expression(depth - 1)})]"

    def statement(indent: str, depth: int) -> list[str]:
        kind = rng.randrange(5 if depth else 2)
        if kind == 0:
            return [f"{indent}v{rng.randrange(30)} = {expression(3)}"]
        if kind == 1:
            return [f"{indent}v{rng.randrange(30)}[{expression(1)}] {rng.choice(['+=', '-=', '='])} {expression(2)}"]
        head = {
            2: f"for v{rng.randrange(30)} in range({expression(2)}):",
            3: f"if {expression(2)} {rng.choice(['<', '>', '==', '!='])} {expression(1)}:",
            4: f"while {expression(2)} > {expression(1)}:",
        }[kind]
        return [indent + head] + [line for _ in range(rng.randrange(1, 4)) for line in statement(indent + "    ", depth - 1)]

    def own_cell(number: int) -> str:
        lines = [f"def f{number}(v0, v1, v2):"]
        for _ in range(rng.randrange(3, 7)):
            lines.extend(statement("    ", 2))
        return "\n".join(lines + [f"    return {expression(2)}"])

    notebooks = [(f"student_{i:03d}", template + [own_cell(n) for n in range(8)]) for i in range(count - copies)]
    for i in range(copies):
        notebooks.append((f"copy_of_{i:03d}", renamed_and_reordered(notebooks[i * 7][1])))
    return notebooks


def test_a_class_of_300_notebooks_is_compared_to_the_end():
    """Timing is the benchmark's (tests/benchmarks/bench_similarity.py); here the 300-notebook case just has to finish."""
    notebooks = synthetic_class(300)
    pairs = sim.compare(notebooks, references())
    assert len(pairs) == 300 * 299 // 2
    top = {frozenset((p.submission_a, p.submission_b)) for p in pairs[:5]}
    assert top == {frozenset((f"student_{i * 7:03d}", f"copy_of_{i:03d}")) for i in range(5)}
    assert all(p.flagged for p in pairs[:5]) and not any(p.flagged for p in pairs[5:])


def test_similarity_still_offers_the_fingerprinting_names():
    """Tokens and fingerprints live in grader/integrations/code_fingerprints.py; grader.integrations.similarity re-exports them
    (same objects)."""
    from grader.integrations import code_fingerprints

    for name in sim.__all__:
        assert hasattr(sim, name), name
        if hasattr(code_fingerprints, name):
            assert getattr(sim, name) is getattr(code_fingerprints, name), name
