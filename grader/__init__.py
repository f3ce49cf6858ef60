"""The grader behind the ``grade`` command: load → execute → check → report.

The package map: one folder per layer, one line per module, in the order the data flows (a module's name says
what it holds). A folder imports only the folders below it (each folder's ``__init__.py`` says which;
``tests/test_structure.py`` holds the table); every folder may import ``errors`` and ``results``, and only
assignments' checks import ``checks``.

``errors``               the one exception tree
``results``              the result schema, the status vocabulary and its words, atomic writes, file hashes
``checks``               the public API for assignments' checks.py (explicit ``__all__``)

run/  Entry points (may import every folder below)
  ``cli``                the command line: parses arguments, calls ``api``, turns errors into exit statuses
  ``api``                each subcommand as a keyword-only function (grade_paths, check_assignment, calibrate...)
  ``grading_run``        ``grade PATH...``: plan, reuse, grade here or in a batch, then the class-wide files
  ``settings``           what a run was asked (RunRequest), what it settled (RunSettings), the user's mistakes (UsageError)
  ``outputs``            gradebook, summary, similarity, JUnit, Gradescope's results, manual points
  ``worker``             a batch's grading process: one notebook from one job description (``python -m grader.run.worker``)
  ``job``                the job description (WorkerJob) and the grading process's command line
  ``batch``              planning jobs, cache keys, local grading processes at most N at a time
  ``cluster``            the same on a Dask cluster
  ``slurm``              workers as SLURM jobs: the [slurm] table checked, jobs started, watched and cancelled
  ``gpu_admission``      whether CUDA is usable, and how many kernels a GPU holds
  ``progress``           progress bars and per-cell progress on the terminal
  ``magic``              ``%grade`` in a notebook: the saved file graded in a separate process, the verdicts shown inline
notebook/  Grading one notebook (may import checking, kernel, sandbox, source, course)
  ``pipeline``           load → neutralize → execute → check → result, for one notebook
  ``snapshot_code``      the grader's code run in the kernel after each cell
checking/  Checking (may import kernel, sandbox, source, course)
  ``question_context``   what a check knows about its question
  ``assertions``         Fail/ForTA/NotGraded, expect_tensor, property_check
  ``architecture_checks``  architecture questions: the function decides, the layer table is the evidence
  ``equivalence``        models judged by the function they compute, and training from the grader's weights
  ``training_checks``    the general training question (quick: learns like the book; full: threshold)
  ``reference_cache``    the grader's own computations cached on disk
  ``verdicts``           a check's ending → status, message, evidence; the report's notes
  ``messages``           sentences a student can act on, from an error and the notebook's source
  ``answers``            a student's prose answer to a manual question, in any language
kernel/  The kernel boundary (may import sandbox, source, course)
  ``execute``            running the cells in the kernel, replay after a crash
  ``deadlines``          one notebook's time limit shared by its cells, its checks and their calls
  ``grader_faults``      a cell's error raised inside code the grader added, said to be the grader's
  ``session``            the kernel process: start, restart, shut down, run grader code
  ``channels``           sockets that refuse oversized messages; the kernel manager
  ``bounded_client``     nbclient's cell runner with outputs capped as they arrive
  ``output_caps``        what of the outputs is kept, and what was cut
  ``shrink``             outputs cut to a size a report can carry
  ``device``             which device the kernel really has; CUDA failures that are the environment's
  ``side_text``          the kernel-side text sent to each kernel (``side``, ``snapshots``, ``ops``, ``room``)
  ``side``               in the kernel: the reply protocol and the encoding
  ``snapshots``          in the kernel: snapshots after the student's cells
  ``ops``                in the kernel: the operations the grader requests
  ``room``               in the clean room's kernel: each request answered by a fork that runs only the source's statements
  ``protocol``           the wire format (tag table, bounds); only data crosses
  ``submission``         the ``Submission`` handle checks drive the kernel with
  ``failures``           what the kernel did, as exceptions the verdicts turn into sentences
sandbox/  The kernel's confinement (imports no other folder)
  ``confinement``        the kernel's confinement (bubblewrap + limits), built and torn down
  ``watch``              the running sandbox: found once launched, stopped when its disk is full, why the kernel died
  ``files``              the kernel's IPC folder reached by descriptors, never through a link the kernel planted
  ``launcher``           the launcher run as the kernel's parent inside its cgroups
  ``parent``             a process that dies with its parent (the launcher, a grading process)
  ``bubblewrap``         bubblewrap's options for a kernel
  ``cgroups``            memory and process caps through cgroups
  ``limits``             memory, process, disk and output limits per kernel
  ``cleanup``            removing what a kernel wrote, bounded and never raising
  ``platform``           what this system lacks (fork, rlimits, bubblewrap, IPC sockets): plain self-check mode, said so
source/  A notebook's source, read from its file (imports no other folder)
  ``load``               bytes in, a v4 notebook or a one-line reason out
  ``neutralize``         lines the sandbox must not run (``!pip``, ``drive.mount``), replaced and recorded
  ``source_index``       what the notebook's source defines, read from the file (never asked of the kernel)
  ``clean_room``         the statements a graded name needs, from the file, for the clean room's kernel
course/  Course material (imports no other folder)
  ``assignment``         an assignment folder: config.toml (questions, snapshots, budgets), its checks, its template's path
  ``question_options``   the typed vocabulary of a question's options, checked at load
  ``template``           solution notebook → student template, and the drift check
  ``self_check``         the template's last cell (install the student kit, %grade) and its [self_check] config
  ``installed``          assignments installed as student kits, found by name (entry point group)
  ``thresholds``         full-budget accuracy thresholds by training-set size; the runs they came from, and on which images
  ``calibrate``          thresholds proposed from full runs of the solution, for every training question
  ``measured_runs``      what a full result measured: a training question's accuracy and its images (count, split); GPU memory
  ``d2l_budget``         the quick/full budgets and the patch that caps training (data, loaders, epochs) in the kernel
  ``fashion_mnist``      the grader's own Fashion-MNIST batches and accuracy loop
  ``data_view``          the kernel's view of the data folder (half the test split is held out)
  ``seeds``              the run's seed for the training checks, and each kernel's seed derived from it
reports/  Results and reports (may import kernel, course); ``templates/`` holds the pages' markup
  ``console``            the terminal table and the batch's one-line summaries
  ``html_report``        the per-submission HTML report
  ``views``              one question's evidence as plain data (tables, cell, plots, details), for the report and Gradescope
  ``evidence_words``     a question's evidence said in a TA's words, its raw numbers kept aside (report and Gradescope)
  ``mathml``             LaTeX drawn as MathML in reports
  ``figures``            the report's own figures (PNG data URIs)
  ``class_summary``      the class's index.html, and how many similar pairs it shows
  ``gradebook``          the gradebook CSV
  ``junit``              JUnit XML
  ``manual``             a TA's points for manual questions
  ``text_safety``        student text made inert for the terminal, XML, CSV and links
integrations/  Beside the reports (may import reports, checking, source, course); ``schemas/`` holds Gradescope's format
  ``similarity``         which pairs of students wrote the same code
  ``code_fingerprints``  the winnowing fingerprints similarity compares
  ``answer_similarity``  pairs alike besides code: identical files, identical or near-identical written answers
  ``gradescope``         Gradescope (re-exports the two below)
  ``gradescope_bundle``  the autograder bundle
  ``gradescope_results`` results.json for one notebook
  ``student_kit``        `grade kit`: one wheel with the grader and the visible checks, never the hidden ones or the solution
  ``lms_export``         Canvas and Moodle gradebook CSVs
  ``lms_roster``         the LMS roster and who is who
"""

import sys

#: The project's version, written here only: pyproject.toml reads it (``dynamic = ["version"]``,
#: statically, without importing the package), and it is part of every cache key, so a bump
#: regrades every stored result. A literal string, so setuptools can read it from the source.
__version__ = "0.2.0"

# nbformat validates with jsonschema, which imports ``rfc3987_syntax`` when it is
# installed (jupyter-events pulls it in) and that compiles a Lark grammar at import:
# 2.7 s of CPU in every grading process, half a cached regrade
# (python-jsonschema/jsonschema#1428). nbformat's schemas use no ``iri`` format, so
# validation is unchanged without it; jsonschema treats the import as unavailable.
# None in sys.modules is Python's documented way to make an import fail; typeshed types the values as modules only.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext grader``: the ``%grade`` self-check magic (``grader/run/magic.py``), imported only when loaded."""
    from grader.run.magic import register

    register(ipython)
