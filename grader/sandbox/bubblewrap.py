"""bubblewrap: whether it can build a sandbox here, and the options that build one for a kernel.

Why apart from :class:`grader.sandbox.confinement.Confinement`: these are pure facts about the machine and the
kernel's view (which host paths it sees, where its one capped tmpfs is mounted), computed from the
limits and folders alone; the confinement runs and watches the sandbox they describe.

**What the kernel sees of the host.** bubblewrap's options, which name host paths, are
passed with ``--args FD`` from a file, so ``/proc/1/cmdline`` (bubblewrap itself, inside)
shows ``bwrap --args N`` and the kernel's command. Inside, every path is neutral:
``/tmp/home``, ``/tmp/.kernel``, ``/data``; ``PATH`` is reset to the system's folders and
the Python environment's. What still names host paths: the Python environment's folders
(the interpreter runs from them, so its path is in the kernel's own command line) and,
in ``/proc/self/mountinfo``, the source of each bind mount (the Python environment and the
data view, whose folder is in the grader's work area).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.sandbox.limits import Limits

#: Inside the sandbox: one tmpfs holds every file the kernel can write (see ``Confinement``).
INSIDE_TMP = "/tmp"
INSIDE_HOME = "/tmp/home"
INSIDE_KERNEL = "/tmp/.kernel"
INSIDE_BLOBS = "/tmp/.kernel/blobs"
INSIDE_CONNECTION = "/tmp/.kernel/connection.json"
INSIDE_SHM = "/dev/shm"
INSIDE_DATA = "/data"


def turned_off_by_environment() -> bool:
    """``GRADER_NO_SANDBOX=1``: the one switch outside the command line, for runs that must reach the kernel from outside it."""
    return os.environ.get("GRADER_NO_SANDBOX") == "1"


def bwrap_path() -> str | None:
    """``bwrap`` if it is installed, not turned off, and can build a sandbox here (it needs namespaces)."""
    path = shutil.which("bwrap")
    if path is None or turned_off_by_environment():
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def read_info(path: Path) -> tuple[int, int] | None:
    """bubblewrap's ``--info-fd`` document: its first process's pid and mount namespace, once written in full."""
    try:
        with open(path, "rb") as file:
            info = json.loads(file.read(4096))
        return int(info["child-pid"]), int(info["mnt-namespace"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bwrap_args(limits: Limits, readonly: list[Path], hidden: list[Path], data: Path | None) -> list[str]:
    """bubblewrap's options (not its path): handed over with ``--args FD``, so that no process in the sandbox shows them.

    ``readonly``: host folders the kernel may read (besides the system's and the Python
    environment's); ``hidden``: the grader's own folders, laid over with an empty read-only
    folder should one sit under a folder bound here; ``data``: the kernel's data view, or None.
    """

    def sized(n: int | None) -> list[str]:
        return [] if not n else ["--size", str(n)]

    # The one tmpfs for the kernel's files first: anything bound below /tmp (a venv under /tmp) must go on top.
    args = [
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--cap-drop",
        "ALL",
        *sized(limits.disk_bytes),
        "--tmpfs",
        INSIDE_TMP,
        "--dir",
        INSIDE_HOME,
        "--dir",
        INSIDE_KERNEL,
        "--dir",
        INSIDE_BLOBS,
    ]
    tops = ("/usr", "/etc", "/opt")
    for top in tops:
        args += ["--ro-bind-try", top, top]
    for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    bound = dict.fromkeys([Path(sys.prefix), Path(sys.base_prefix), *library_folders(), *map(Path, readonly)])
    for folder in bound:
        real, given = folder.resolve(), Path(os.path.abspath(folder))
        args += ["--ro-bind-try", str(real), str(real)]
        if given != real:  # reached through a symlink (../shared -> ...): the kernel is given this path
            args += ["--ro-bind-try", str(real), str(given)]
    args += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev", *sized(limits.shm_bytes), "--tmpfs", INSIDE_SHM]
    for device in sorted(glob.glob("/dev/nvidia*")):  # CUDA, when the machine has it
        args += ["--dev-bind", device, device]
    visible = [Path(top) for top in tops] + [p for folder in bound for p in (folder.resolve(), Path(os.path.abspath(folder)))]
    for path in hidden:  # the grader's own code, should any of it sit under a folder bound above: an empty, read-only folder
        if path.is_dir() and any(path.resolve().is_relative_to(v) or path.is_relative_to(v) for v in visible):
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
    if data is not None:
        args += ["--ro-bind", str(Path(data).resolve()), INSIDE_DATA]
    search = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
    args += [
        "--chdir",
        INSIDE_HOME,
        "--setenv",
        "HOME",
        INSIDE_HOME,
        "--setenv",
        "TMPDIR",
        INSIDE_TMP,
        "--setenv",
        "PATH",
        search,
        "--unsetenv",
        "JPY_PARENT_PID",
    ]
    # Last: bubblewrap's root and /dev are tmpfs it made writable and uncapped; nothing is written there after setup.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return args


def library_folders() -> list[Path]:
    """The installed libraries' folders on this process's path outside its prefixes: a user site
    (``pip install --user``), or a site a ``.pth`` line adds. The kernel runs this interpreter and needs them
    (ipykernel, torch); without them it dies before its first reply. Only folders named as sites are given:
    a checkout's root that an editable install puts on the path holds the grader and the course's hidden checks.
    """
    found = [Path(entry) for entry in sys.path if entry and Path(entry).name in ("site-packages", "dist-packages")]
    return [folder for folder in found if folder.is_dir()]
