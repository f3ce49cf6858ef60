"""The kernel's launcher: join the submission's cgroups or set rlimits (RLIMIT_DATA, not RLIMIT_AS: see ``sandbox``), then become the kernel.

Run as ``python -m grader.confine [--cgroup DIR]... [--rlimit-data N] ... -- COMMAND...``
by the kernel manager (see ``sandbox.Confinement.wrap``). It runs outside
the sandbox, before it: whatever it joins or limits is inherited by the
sandbox and by every process the notebook starts.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.confine")
    parser.add_argument("--cgroup", action="append", default=[], help="cgroup folder to join (cgroup.procs)")
    parser.add_argument("--rlimit-data", type=int, help="data-segment limit in bytes (heap and writable private mappings)")
    parser.add_argument("--rlimit-nproc", type=int, help="process limit (not enforced for root)")
    parser.add_argument("--rlimit-fsize", type=int, help="largest file the kernel may write, in bytes")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    for folder in args.cgroup:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    for limit, value in ((resource.RLIMIT_DATA, args.rlimit_data), (resource.RLIMIT_NPROC, args.rlimit_nproc),
                         (resource.RLIMIT_FSIZE, args.rlimit_fsize)):  # fmt: skip
        if value:
            resource.setrlimit(limit, (value, value))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
