"""The self-check cell that ends every student template (``grade assign``), and its ``[self_check]`` config.

Students work in Colab or Jupyter, often without a terminal. The last cell of the template lets them
check their saved notebook with one click: it installs the course's student kit (``grade kit``) where
the grader is not importable yet, then runs the ``%grade`` magic, which grades the saved file in a
separate kernel. The course says where its kit is with ``[self_check] kit = "URL or file"`` in the
assignment's config (pip's syntax: a URL, a path, a glob the shell expands). The cell carries the
cell tag :data:`grader.results.SELF_CHECK_TAG`, by which the grader skips it when it runs a notebook.
"""

from __future__ import annotations

import re
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from grader.errors import ConfigError
from grader.results import SELF_CHECK_TAG

#: Keys of an assignment's ``[self_check]`` table.
SELF_CHECK_KEYS = ("kit",)
#: What a kit location may hold: it is pasted into a ``%pip install`` line, which IPython expands (``$name``,
#: ``{expr}``) and a shell runs (``&``, ``;``, ``|``, quotes, spaces): none of those.
_KIT = re.compile(r"[A-Za-z0-9._~:/?@+,=%*\[\]-]+")


def kit_of(config: dict[str, Any], where: str) -> str | None:
    """The kit location of a parsed config (None: the course has not set one); a malformed table fails here."""
    table = config.get("self_check", {})
    if not isinstance(table, dict) or set(table) - set(SELF_CHECK_KEYS):
        raise ConfigError(f"{where}: [self_check] knows only {', '.join(SELF_CHECK_KEYS)}")
    kit = table.get("kit")
    if kit is None:
        return None
    if not isinstance(kit, str) or not _KIT.fullmatch(kit):
        raise ConfigError(f"{where}: self_check.kit is one URL or path for pip (letters, digits and ._~:/?@+,=%*[]- only), not {kit!r}")
    return kit


def self_check_cell(kit: str | None) -> NotebookNode:
    """The template's last cell: install the kit where needed, then ``%load_ext grader`` and ``%grade``."""
    if kit is None:
        install = [
            "    # Your course has not said where its student kit is: ask for it, then `pip install` the file it gives you.",
            '    raise ImportError("the self-check needs the course\'s student kit (see the comment above)")',
        ]
    elif "://" not in kit and any(c in kit for c in "*?["):  # a file name with a glob: expanded here, as no shell
        install = [  # on Windows (where %pip's command line is cmd's) would; `{...}` is IPython's own expansion
            "    # Installs your course's student kit (the grader and this assignment's visible checks), once:",
            "    # put the kit file the course gave you next to this notebook first (in Colab: Files > Upload).",
            "    from glob import glob",
            f"    kit = max(glob({kit!r}), default={kit!r})",
            "    %pip install --quiet {kit}",
        ]
    else:
        install = [
            "    # Installs your course's student kit (the grader and this assignment's visible checks), once.",
            "    # If it is a file the course gave you, put it next to this notebook first (in Colab: Files > Upload).",
            f"    %pip install --quiet {kit}",
        ]
    source = [
        "# Self-check: run this cell after saving the notebook (Ctrl+S, or File > Save).",
        "# It grades the SAVED file in a separate process with the course's visible checks and shows your points.",
        "# The course's own grading also runs hidden checks, so your final grade may differ. Nothing is sent anywhere.",
        "try:",
        "    import grader  # installed already: nothing to install",
        "except ImportError:",
        *install,
        "%load_ext grader",
        "%grade",
    ]
    return new_code_cell("\n".join(source), metadata={"tags": [SELF_CHECK_TAG]})
