"""What crosses the kernel boundary is data: decoded strictly, never evaluated or unpickled."""

from __future__ import annotations

import base64
import types

import pytest
import torch

from grader import bridge
from grader.checking import Fail, expect_tensor, property_check, tensors


def kernel_module() -> types.ModuleType:
    """The kernel-side code, loaded the way the kernel loads it (from its text)."""
    module = types.ModuleType("_hwgrader_test")
    exec(compile(bridge.KERNEL_SOURCE, "<_hwgrader>", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8])
def test_tensors_encoded_in_the_kernel_decode_exactly(dtype):
    value = (torch.arange(12) % 3).to(dtype).reshape(3, 4)
    decoded = bridge.decode(kernel_module().encode(value))
    assert decoded.dtype == dtype and torch.equal(decoded, value)


def test_nested_values_keep_their_structure():
    value = {"shape": (2, 2), "rows": [torch.zeros(1), "text", None, 3.5], "size": torch.Size([4, 5])}
    assert bridge.decode(kernel_module().encode(value)) == {"shape": (2, 2), "rows": [torch.zeros(1), "text", None, 3.5], "size": [4, 5]}


def test_grader_inputs_decode_in_the_kernel():
    K = kernel_module()
    value = (torch.ones(2, 3), {"k": [1, 2]})
    decoded = K.decode(bridge.encode(value))
    assert torch.equal(decoded[0], value[0]) and decoded[1] == {"k": [1, 2]}


def test_unknown_objects_arrive_as_a_type_name_only():
    decoded = bridge.decode(kernel_module().encode(object()))
    assert isinstance(decoded, bridge.RemoteObject) and decoded.type == "builtins.object"


def test_a_tensor_with_an_unknown_dtype_is_refused():
    with pytest.raises(bridge.BridgeError, match="dtype"):
        bridge.decode({"__tensor__": "object", "shape": [1], "b64": ""})


def test_a_tensor_whose_bytes_do_not_match_its_shape_is_refused():
    payload = base64.b64encode(b"\x00" * 8).decode()
    with pytest.raises(bridge.BridgeError, match="carries 8 bytes, expected 16"):
        bridge.decode({"__tensor__": "float32", "shape": [4], "b64": payload})


def test_an_unexpected_mapping_is_refused():
    with pytest.raises(bridge.BridgeError, match="unexpected object"):
        bridge.decode({"__reduce__": "os.system"})


def test_kernel_errors_point_at_the_students_line():
    K = kernel_module()

    def student(x):
        return x[10]

    try:
        student([])
    except IndexError as exc:
        info = K._error(exc, 7)["error"]
    assert info["type"] == "IndexError" and info["where"] == 7 and info["code"] == "return x[10]"


# --------------------------------------------------------------------------- checking helpers


def test_expect_tensor_names_the_first_differing_entry():
    with pytest.raises(Fail) as caught:
        expect_tensor(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "Y")
    assert "first difference at [1, 1]: expected 4, got 5" in caught.value.message
    assert caught.value.details["first_difference"] == [1, 1]


def test_expect_tensor_reports_shapes_first():
    with pytest.raises(Fail, match=r"expected shape \(2, 2\), got \(3,\)"):
        expect_tensor(torch.zeros(3), torch.zeros(2, 2), "Y")


def test_expect_tensor_rejects_a_non_tensor():
    with pytest.raises(Fail, match="got int 3"):
        expect_tensor(3, torch.zeros(2), "Y")


def test_property_check_reports_the_shrunk_example():
    def check(t):
        if t.abs().max() >= 1:
            raise Fail("too big")

    with pytest.raises(Fail) as caught:
        property_check("demo", tensors((3,)), check, examples=50, show=lambda t: t.tolist())
    shrunk = caught.value.details["example"]
    assert sorted(abs(v) for v in shrunk) == [0.0, 0.0, 1.0]


def test_property_check_passes_quietly_when_every_example_passes():
    property_check("demo", tensors((2,)), lambda t: None, examples=10)
