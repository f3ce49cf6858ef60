"""What crosses the kernel boundary is data: decoded strictly, never evaluated or unpickled."""

from __future__ import annotations

import base64
import types

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from grader.checking.assertions import Fail, expect_tensor, property_check, tensors
from grader.kernel import protocol, side_text
from grader.sandbox import files
from grader.sandbox.files import BlobFolder


def kernel_module() -> types.ModuleType:
    """The kernel-side code, loaded the way the kernel loads it (from its text)."""
    module = types.ModuleType("_hwgrader_test")
    exec(compile(side_text.KERNEL_SOURCE, "<_hwgrader>", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8])
def test_tensors_encoded_in_the_kernel_decode_exactly(dtype):
    value = (torch.arange(12) % 3).to(dtype).reshape(3, 4)
    decoded = protocol.decode(kernel_module().encode(value))
    assert decoded.dtype == dtype and torch.equal(decoded, value)


def test_nested_values_keep_their_structure():
    value = {"shape": (2, 2), "rows": [torch.zeros(1), "text", None, 3.5], "size": torch.Size([4, 5])}
    assert protocol.decode(kernel_module().encode(value)) == {"shape": (2, 2), "rows": [torch.zeros(1), "text", None, 3.5], "size": [4, 5]}


def test_grader_inputs_decode_in_the_kernel():
    K = kernel_module()
    value = (torch.ones(2, 3), {"k": [1, 2]})
    decoded = K.decode(protocol.encode(value))
    assert torch.equal(decoded[0], value[0]) and decoded[1] == {"k": [1, 2]}


def test_unknown_objects_arrive_as_a_type_name_only():
    decoded = protocol.decode(kernel_module().encode(object()))
    assert isinstance(decoded, protocol.RemoteObject) and decoded.type == "builtins.object"


def test_a_tensor_with_an_unknown_dtype_is_refused():
    with pytest.raises(protocol.BridgeError, match="dtype"):
        protocol.decode({"__tensor__": "object", "shape": [1], "b64": ""})


def test_a_tensor_whose_bytes_do_not_match_its_shape_is_refused():
    payload = base64.b64encode(b"\x00" * 8).decode()
    with pytest.raises(protocol.BridgeError, match="carries 8 bytes, expected 16"):
        protocol.decode({"__tensor__": "float32", "shape": [4], "b64": payload})


def test_an_unexpected_mapping_is_refused():
    with pytest.raises(protocol.BridgeError, match="unexpected object"):
        protocol.decode({"__reduce__": "os.system"})


# --------------------------------------------------------------------------- large tensors as files


def test_a_large_tensor_arrives_as_raw_bytes_in_a_file_that_is_removed_after_reading(tmp_path):
    K = kernel_module()
    K.BLOBS = str(tmp_path)
    value = {"state": [torch.randn(300, 400), torch.arange(10)]}
    encoded = K.encode(value)
    assert "blob" in encoded["__dict__"]["state"][0] and "b64" in encoded["__dict__"]["state"][1]  # small ones stay inline
    decoded = protocol.decode(encoded, BlobFolder.open(tmp_path))
    assert torch.equal(decoded["state"][0], value["state"][0]) and torch.equal(decoded["state"][1], value["state"][1])
    assert list(tmp_path.iterdir()) == []


def blob_reply(name: str, shape=(4,)) -> dict:
    return {"__tensor__": "float32", "shape": list(shape), "blob": name}


def test_a_tensor_file_is_not_read_without_a_folder_for_them():
    with pytest.raises(protocol.BridgeError, match="reads none"):
        protocol.decode(blob_reply("0123456789abcdef.bin"))


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "0123456789abcdef.bin/..", 7])
def test_a_tensor_file_name_that_is_not_the_kernels_plain_format_is_refused(tmp_path, name):
    with pytest.raises(protocol.BridgeError, match="unexpected name"):
        protocol.decode(blob_reply(name), BlobFolder.open(tmp_path))


def test_a_tensor_file_that_is_a_link_to_another_file_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 16)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "0123456789abcdef.bin").symlink_to(secret)
    with pytest.raises(protocol.BridgeError, match="cannot be read"):
        protocol.decode(blob_reply("0123456789abcdef.bin"), BlobFolder.open(tmp_path / "blobs"))


def test_a_tensor_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "0123456789abcdef.bin")
    with pytest.raises(protocol.BridgeError, match="not a file of 16 bytes"):
        protocol.decode(blob_reply("0123456789abcdef.bin"), BlobFolder.open(tmp_path))


def test_a_tensor_file_of_another_size_than_its_shape_says_is_refused(tmp_path):
    (tmp_path / "0123456789abcdef.bin").write_bytes(b"\x00" * 20)
    with pytest.raises(protocol.BridgeError, match="not a file of 16 bytes"):
        protocol.decode(blob_reply("0123456789abcdef.bin"), BlobFolder.open(tmp_path))


def test_a_tensor_larger_than_the_grader_reads_is_refused_before_any_byte_is_read(tmp_path):
    with pytest.raises(protocol.BridgeError, match="over the|more than"):
        protocol.decode(blob_reply("0123456789abcdef.bin", shape=(2**28 + 1,)), BlobFolder.open(tmp_path))


def _cell_function(source: str, name: str):
    """A function compiled as IPython compiles a notebook cell (a file under ``ipykernel_<pid>/``)."""
    import linecache

    filename = "/tmp/ipykernel_4242/31337.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # as IPython registers a cell
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def test_kernel_errors_point_at_the_students_line():
    K = kernel_module()
    student = _cell_function("def student(x):\n    return x[10]\n", "student")
    try:
        student([])
    except IndexError as exc:
        info = K._error(exc, 7)["error"]
    assert info["type"] == "IndexError" and info["where"] == 7 and info["code"] == "return x[10]" and info["line"] == 2


def test_an_error_raised_in_the_graders_kernel_code_shows_no_line():
    K = kernel_module()
    student = _cell_function("def vgg_block(num_convs, in_channels, out_channels):\n    pass\n", "vgg_block")
    K.defs["vgg_block"] = (student, 3)
    reply = K._build("vgg_block", [1, 4], {}, 0)[2]["error"]
    assert reply["type"] == "TypeError" and reply["line"] is None and reply["code"] == ""


def test_a_reply_longer_than_the_limit_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_REPLY_CHARS", 100)
    with pytest.raises(protocol.BridgeError, match="characters"):
        protocol.parse_reply('{"ok": "' + "x" * 200 + '"}')


def test_a_reply_nested_beyond_what_the_parser_can_hold_is_refused_not_a_crash():
    with pytest.raises(protocol.BridgeError):
        protocol.parse_reply('{"ok": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_a_reply_nested_deeper_than_the_limit_is_refused_when_decoded():
    value = 0
    for _ in range(protocol.MAX_REPLY_DEPTH + 2):
        value = [value]
    with pytest.raises(protocol.BridgeError, match="nested"):
        protocol.decode(value)


def test_tensors_whose_declared_sizes_add_up_past_the_limit_are_refused_before_reading(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_REPLY_TENSOR_BYTES", 1000)
    one = kernel_module().encode(torch.zeros(100))  # 400 bytes each
    with pytest.raises(protocol.BridgeError, match="more than 1000 bytes"):
        protocol.decode([one, one, one])


def test_a_large_grader_input_travels_as_a_new_file_the_kernel_reads(tmp_path):
    K = kernel_module()
    K.BLOBS = str(tmp_path)
    written: list = []
    value = torch.arange(40_000, dtype=torch.float32)
    encoded = protocol.encode([value], BlobFolder.open(tmp_path), written)
    assert "blob" in encoded[0] and len(written) == 1 and (tmp_path / written[0]).stat().st_size == 160_000
    assert torch.equal(K.decode(encoded)[0], value)


def test_a_grader_input_file_is_never_written_through_a_link_the_kernel_planted(tmp_path, monkeypatch):
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "a" * 16)
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / ("a" * 16 + ".in")).symlink_to(target)
    with pytest.raises(protocol.BridgeError, match="could not hand a tensor"):
        protocol.encode(torch.zeros(40_000), BlobFolder.open(tmp_path), [])
    assert target.read_text() == "keep"


def _link_attack(tmp_path):
    """A kernel's IPC folder whose ``blobs`` the kernel replaced with a link to a host folder (absolute path)."""
    host = tmp_path / "host"
    host.mkdir()
    kernel = tmp_path / "root" / "tmp" / ".kernel"
    kernel.mkdir(parents=True)
    (kernel / "blobs").symlink_to(host)
    return host


def test_the_tensor_folder_is_never_reached_through_a_link_the_kernel_put_on_the_way(tmp_path):
    host = _link_attack(tmp_path)
    with pytest.raises(OSError):
        BlobFolder.open(tmp_path / "root", ("tmp", ".kernel", "blobs"))
    assert list(host.iterdir()) == []


def test_a_link_higher_up_the_way_is_refused_too(tmp_path):
    host = tmp_path / "host"
    (host / "blobs").mkdir(parents=True)
    (tmp_path / "root" / "tmp").mkdir(parents=True)
    (tmp_path / "root" / "tmp" / ".kernel").symlink_to(host)
    with pytest.raises(OSError):
        BlobFolder.open(tmp_path / "root", ("tmp", ".kernel", "blobs"))


def test_a_folder_swapped_for_a_link_after_it_was_opened_keeps_every_write_in_the_original(tmp_path):
    kernel = tmp_path / "root" / "tmp" / ".kernel"
    (kernel / "blobs").mkdir(parents=True)
    host = tmp_path / "host"
    host.mkdir()
    with BlobFolder.open(tmp_path / "root", ("tmp", ".kernel", "blobs")) as folder:
        (kernel / "blobs").rename(kernel / "moved")  # the kernel moves the folder away and puts a link in its place
        (kernel / "blobs").symlink_to(host)
        written: list[str] = []
        protocol.encode(torch.zeros(40_000), folder, written)
        for name in written:
            folder.remove(name)
    assert list(host.iterdir()) == [] and list((kernel / "moved").iterdir()) == []


def test_a_large_tensor_is_read_straight_into_its_own_memory_not_copied(tmp_path, monkeypatch):
    K = kernel_module()
    K.BLOBS = str(tmp_path)
    encoded = K.encode(torch.arange(100_000, dtype=torch.float32))
    copies = []
    monkeypatch.setattr(torch.Tensor, "clone", lambda self, *a, **k: copies.append(self) or self)
    monkeypatch.setattr(torch, "frombuffer", lambda *a, **k: copies.append(a) or None)
    decoded = protocol.decode(encoded, BlobFolder.open(tmp_path))
    assert torch.equal(decoded, torch.arange(100_000, dtype=torch.float32)) and copies == []


def test_the_call_the_grader_made_is_rendered_for_messages():
    payload = {"name": "vgg_block", "args": protocol.encode([1, 4]), "kwargs": protocol.encode({"arch": ((1, 8),)})}
    assert protocol.render_call("summary", payload) == "vgg_block(1, 4, arch=((1, 8),))"


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


def test_the_gradient_operation_backpropagates_through_the_student_s_function():
    K = kernel_module()
    K.defs["scaled"] = (lambda x, w: (x * w) ** 2, 4)
    x, w = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0])
    reply = K.op_gradient("scaled", protocol.encode([x, w]), protocol.encode({}), [0, 1])
    grads = reply["ok"]["grads"]
    assert torch.equal(grads[0], 2 * x * w * w) and torch.equal(grads[1], 2 * x * w * x) and reply["cell"] == 4


def test_a_gradient_the_student_s_code_cut_off_comes_back_as_none():
    K = kernel_module()
    K.defs["detached"] = (lambda x: x.detach() * 2 + x.sum() * 0, 1)
    reply = K.op_gradient("detached", protocol.encode([torch.ones(2)]), protocol.encode({}), [0], cotangent=None)
    assert torch.equal(reply["ok"]["grads"][0], torch.zeros(2))  # only the `x.sum() * 0` path carries a gradient
    K.defs["constant"] = (lambda x: x.detach() * 2, 1)
    assert K.op_gradient("constant", protocol.encode([torch.ones(2)]), protocol.encode({}), [0])["ok"]["grads"] is None


# --------------------------------------------------------------------------- any reply (issue 25, item 3)

_TAGS = ["__tensor__", "shape", "b64", "blob", "__tuple__", "__dict__", "__float__", "__error__", "__object__", "repr", "type", "message"]
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["float32", "nan", "inf", "AAAA", "!!"])
)
#: JSON-ish values whose keys are mostly the protocol's own tags, so most draws reach a tag's branch.
_JSONISH = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_TAGS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(_JSONISH)
def test_any_reply_decodes_to_a_value_or_a_bridge_error(value):
    try:
        protocol.decode(value)
    except protocol.BridgeError:
        pass


@pytest.mark.parametrize(
    "reply",
    [
        {"__tensor__": ["float32"], "shape": [1], "b64": "AAAAAA=="},
        {"__tensor__": {"a": 1}, "shape": [1]},
        {"__tensor__": "float32", "shape": [1], "b64": "!!!!"},
        {"__float__": [1]},
        {"__float__": "1e999x"},
        {"__float__": None},
        {"__error__": "boom"},
        {"__error__": [1, 2]},
        {"__tuple__": 7},
        {"__dict__": [1]},
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    ],
)
def test_a_malformed_tagged_value_is_a_bridge_error(reply):
    with pytest.raises(protocol.BridgeError):
        protocol.decode(reply)


@pytest.mark.parametrize("answer", [[1, 2], 7, "text", None, (1,)])
def test_an_operation_answered_with_anything_but_a_mapping_is_a_bridge_error(answer):
    from grader.kernel.submission import mapping

    with pytest.raises(protocol.BridgeError, match="where a mapping belongs"):
        mapping(answer, "values")


def test_a_checks_own_failure_is_the_tas_to_judge_never_the_students_error():
    from grader.checking.verdicts import run_check
    from grader.course.assignment import Question

    def check(sub):
        return sub["rows"][0]  # a check that trusted an answer's shape

    verdict = run_check(types.SimpleNamespace(), Question("q", "Q", 2.0), check, context=None)  # type: ignore[arg-type]
    assert verdict.status == "manual" and verdict.points == 0
    assert "the grader could not judge this question (TypeError" in verdict.message and "sent to a TA" in verdict.message
    assert "grader_traceback" in verdict.details
