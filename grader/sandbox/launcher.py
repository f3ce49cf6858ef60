"""The kernel's launcher: join the submission's cgroups or set rlimits (RLIMIT_DATA, not RLIMIT_AS: see ``sandbox``),
start the sandbox without showing it a host path, and keep the kernel's own output within its cap.

Run as ``python -m grader.sandbox.launcher [--cgroup DIR]... [--rlimit-data N] ... [--output-limit N --stopped FILE]
[--bwrap BWRAP --bwrap-args FILE --info FILE [--copy-in HOST INSIDE]...] -- COMMAND...`` by the kernel
manager (see ``sandbox.Confinement.wrap``). It runs outside the sandbox, before it: whatever it
joins or limits is inherited by the sandbox and by every process the notebook starts.

* ``--bwrap-args``: bubblewrap's options, NUL-separated, in a file of the grader's. They are
  handed to bubblewrap as ``--args FD`` (a memory file), with ``--info-fd`` (bubblewrap writes
  its first process's pid to ``--info``) and a ``--file FD INSIDE`` per ``--copy-in`` (the
  kernel's connection file). So the command line of bubblewrap -- which is ``/proc/1/cmdline``
  inside the sandbox -- is ``bwrap --args N COMMAND``, and names no host folder.
* ``--parent PID``: the grading process. If it dies -- even by ``SIGKILL``, when nothing of the
  grader's runs to clean up -- the kernel dies with it: this process asks Linux for a signal when
  its parent dies (``PR_SET_PDEATHSIG``), then kills the kernel and every process left in its
  cgroups; the kernel itself (bubblewrap, or the kernel without a sandbox) gets ``SIGKILL`` when
  this process dies, and bubblewrap's ``--die-with-parent`` takes the sandbox's processes along.
* ``--output-limit``: the kernel's stdout and stderr (fd 1 and 2) are a pipe this process
  drains: the first :data:`KEPT_OUTPUT` bytes go to this process's own stdout (the log the
  kernel manager gave it), the rest is counted and dropped, and past the limit the kernel is
  stopped and ``--stopped`` says so in one line for the grader. A file the kernel writes
  to would grow with it; a pipe costs only the time to read it.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import signal
import sys
import time

from grader.sandbox.parent import die_with_parent

#: Bytes of the kernel's own output kept in the log (what the grader shows when a kernel dies at start).
KEPT_OUTPUT = 2**20
#: After the kernel's launcher child has exited, how long to read what is still in the pipe.
DRAIN_SECONDS = 1.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.sandbox.launcher")
    parser.add_argument("--parent", type=int, help="the grading process: when it dies, the kernel dies too")
    parser.add_argument("--cgroup", action="append", default=[], help="cgroup folder to join (cgroup.procs)")
    parser.add_argument("--rlimit-data", type=int, help="data-segment limit in bytes (heap and writable private mappings)")
    parser.add_argument("--rlimit-nproc", type=int, help="process limit (not enforced for root)")
    parser.add_argument("--rlimit-fsize", type=int, help="largest file the kernel may write, in bytes")
    parser.add_argument("--output-limit", type=int, help="stop the kernel once it wrote this many bytes to its stdout/stderr")
    parser.add_argument("--stopped", help="file for the one line saying why the kernel was stopped")
    parser.add_argument("--bwrap", help="bubblewrap's path: run COMMAND in its sandbox")
    parser.add_argument("--bwrap-args", help="file of bubblewrap's options, NUL-separated")
    parser.add_argument("--info", help="file for bubblewrap's --info-fd document (the sandbox's pid)")
    parser.add_argument(
        "--copy-in", nargs=2, action="append", default=[], metavar=("HOST", "INSIDE"), help="copy a host file into the sandbox"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    if args.parent and not die_with_parent(signal.SIGTERM, args.parent):
        sys.exit(1)  # the grader is already gone: nobody would read this kernel
    for folder in args.cgroup:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    for limit, value in (
        (resource.RLIMIT_DATA, args.rlimit_data),
        (resource.RLIMIT_NPROC, args.rlimit_nproc),
        (resource.RLIMIT_FSIZE, args.rlimit_fsize),
    ):
        if value:
            resource.setrlimit(limit, (value, value))
    if args.bwrap:
        command = sandboxed(args.bwrap, args.bwrap_args, args.info, args.copy_in, command)
    if not args.output_limit:
        if args.parent:
            die_with_parent(signal.SIGKILL)  # kept across exec: the kernel itself dies with the grader
        os.execvp(command[0], command)
    sys.exit(run_draining(command, args.output_limit, args.stopped, args.cgroup if args.parent else None))


def _kill_everything(child: int, cgroups: list[str]) -> None:
    """The grader died: kill the kernel and every process left in its cgroups (this one excepted), then leave."""
    try:
        os.kill(child, signal.SIGKILL)
    except OSError:
        pass
    for folder in cgroups:
        try:
            with open(os.path.join(folder, "cgroup.procs")) as procs:
                pids = [int(line) for line in procs.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    os._exit(128 + signal.SIGTERM)


def sandboxed(bwrap: str, options_file: str | None, info: str | None, copies: list[list[str]], command: list[str]) -> list[str]:
    """bubblewrap's command line with its options passed by descriptor (the descriptors stay open across ``exec``)."""
    options = b""
    if options_file:
        with open(options_file, "rb") as file:
            options = file.read()
    if info:
        options += b"--info-fd\0%d\0" % _inheritable(os.open(info, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    for host, inside in copies:
        options += b"--file\0%d\0%s\0" % (_inheritable(os.open(host, os.O_RDONLY)), os.fsencode(inside))
    memory = os.memfd_create("bwrap-args", 0)  # no size limit, unlike a pipe nobody reads yet
    os.write(memory, options)
    os.lseek(memory, 0, os.SEEK_SET)
    return [bwrap, "--args", str(_inheritable(memory)), *command]


def _inheritable(fd: int) -> int:
    os.set_inheritable(fd, True)
    return fd


def run_draining(command: list[str], limit: int, stopped: str | None, parent_cgroups: list[str] | None = None) -> int:
    """Run ``command`` with fd 1 and 2 on a pipe; keep the first bytes, stop it past ``limit``; its exit status.

    ``parent_cgroups``: not None when the grader's death must take the kernel along (``--parent``): the
    signal asked for in :func:`main` then kills the kernel and what is left in these cgroups.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            if parent_cgroups is not None:
                die_with_parent(signal.SIGKILL)  # the kernel (or bubblewrap) dies with this launcher
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.close(read_end)
            os.close(write_end)
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"grader.sandbox.launcher: cannot run {command[0]}: {exc}\n".encode())
        os._exit(127)
    os.close(write_end)
    if parent_cgroups is not None:
        signal.signal(signal.SIGTERM, lambda *_: _kill_everything(child, parent_cgroups))
    kept = total = 0
    halted = False
    status: int | None = None
    quiet_after = None
    while True:
        ready, _, _ = select.select([read_end], [], [], 0.2)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            if kept < KEPT_OUTPUT:
                kept += _write_all(1, chunk[: KEPT_OUTPUT - kept])
            total += len(chunk)
            if total > limit and status is None and not halted:
                _stop(child, stopped, limit)
                halted = True
        if status is None:
            done, status_now = os.waitpid(child, os.WNOHANG)
            if done:
                status = status_now
                quiet_after = time.monotonic() + DRAIN_SECONDS  # a process it left behind may hold the pipe open
        elif quiet_after is not None and time.monotonic() > quiet_after:
            break
    os.close(read_end)
    if total > kept:
        _write_all(1, f"\n[grader.sandbox.launcher: {total - kept} more bytes of the kernel's stdout/stderr were not kept]\n".encode())
    if status is None:
        _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _stop(child: int, stopped: str | None, limit: int) -> None:
    """Say why first (the grader reads it when it finds the kernel dead), then stop the kernel."""
    size = f"{limit / 2**30:.3g} GiB" if limit >= 2**30 else f"{limit / 2**20:.3g} MiB"
    if stopped is not None:
        with open(stopped, "w", encoding="utf-8") as file:
            file.write(f"the kernel wrote more than {size} to its own stdout/stderr; it was stopped\n")
    try:
        os.kill(child, signal.SIGKILL)  # bubblewrap (its sandbox dies with it) or, without one, the kernel
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError:  # the log is gone or full: the kernel's output is dropped, never blocked on
            break
    return len(data)


if __name__ == "__main__":
    main(sys.argv[1:])
