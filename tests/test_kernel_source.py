"""The kernel-side files are one module once concatenated: it compiles, and its entry points are there."""

from __future__ import annotations

import json
import types

import pytest

from grader.kernel.side_text import KERNEL_FILES, KERNEL_SOURCE


def kernel_module() -> types.ModuleType:
    """The kernel-side code, loaded the way the kernel loads it (one text, executed as ``_hwgrader``)."""
    module = types.ModuleType("_hwgrader_test")
    exec(compile(KERNEL_SOURCE, "<_hwgrader>", "exec"), module.__dict__)
    return module


def test_the_kernel_source_is_every_kernel_file_in_order():
    assert KERNEL_FILES[0] == "side.py" and len(KERNEL_FILES) == len(set(KERNEL_FILES))
    positions = [KERNEL_SOURCE.index(f'"""Kernel side, part {n} of {len(KERNEL_FILES)}') for n in range(2, len(KERNEL_FILES) + 1)]
    assert positions == sorted(positions)


@pytest.mark.parametrize("name", ["request", "snap_defs", "snap_def_source", "snap_values", "snap_scan", "encode", "decode", "OPS"])
def test_the_concatenated_source_defines_what_the_grader_calls(name):
    assert name in vars(kernel_module())


def test_a_request_reaches_an_operation_defined_in_a_later_file(capsys):
    kernel = kernel_module()
    kernel.request("values", json.dumps({"key": "nothing here"}))
    line = capsys.readouterr().out.strip()
    assert line.startswith(kernel.MARKER) and json.loads(line[len(kernel.MARKER) :]) == {"missing": "nothing here"}
