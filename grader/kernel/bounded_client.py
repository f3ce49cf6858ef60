"""nbclient's cell runner with every output capped as it arrives (see :mod:`grader.kernel.output_caps`).

Why a subclass and not a pass over the finished notebook: by the time a cell
ends, its outputs would already be in the grader's memory. Here each output
message is measured before it is kept, streams keep their head and tail, and
a cell that lost output says what in its metadata and in a last output.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from grader.kernel.channels import REFUSED_ENAME, resubscribe, take_refused
from grader.kernel.output_caps import OutputCaps, OutputCut, StreamBuffer, clip, error_output, measure


class BoundedNotebookClient(NotebookClient):
    """nbclient's cell runner with the outputs capped as they arrive (see :class:`OutputCaps`).

    Stream messages of one name in a row are merged into one output (as a
    notebook front end shows them), so a print loop of a million lines is one
    output, not a million. Widgets' messages are ignored: nothing in grading
    reads them, and their state would be kept without bound.
    """

    def __init__(self, nb: NotebookNode, caps: OutputCaps | None = None, **kw: Any):
        super().__init__(nb, **kw)
        self.caps = caps or OutputCaps()
        #: What was not kept, per cell index (of the cell's last run).
        self.cuts: dict[int, OutputCut] = {}
        self._kept: dict[int, int] = {}  # characters kept per cell index
        self._total = 0
        self._sizes: dict[int, int] = {}  # id(output) -> characters charged for it
        self._streams: dict[int, StreamBuffer] = {}  # id(stream output) -> its buffer, for the cell running now

    # -- accounting

    def _allowance(self, cell_index: int) -> int:
        return max(0, min(self.caps.per_cell - self._kept.get(cell_index, 0), self.caps.per_notebook - self._total))

    def _charge(self, cell_index: int, node: NotebookNode, size: int) -> None:
        self._kept[cell_index] = self._kept.get(cell_index, 0) + size
        self._total += size
        self._sizes[id(node)] = self._sizes.get(id(node), 0) + size

    def _release(self, cell_index: int, outputs: list[NotebookNode]) -> None:
        for node in outputs:
            size = self._sizes.pop(id(node), 0)
            self._kept[cell_index] = self._kept.get(cell_index, 0) - size
            self._total -= size
            self._streams.pop(id(node), None)

    def cut(self, cell_index: int) -> OutputCut:
        return self.cuts.setdefault(cell_index, OutputCut())

    # -- a cell

    async def async_execute_cell(
        self, cell: NotebookNode, cell_index: int, execution_count: int | None = None, store_history: bool = True
    ) -> NotebookNode:
        # The cell's outputs are replaced (nbclient empties them before the first message): release their share.
        self._release(cell_index, list(cell.get("outputs", [])))
        self._forget_displays(cell_index)
        self.cuts[cell_index] = OutputCut()
        self._streams = {}
        alive = True
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            alive = False  # its connections ended with it: nothing was refused
            raise
        finally:
            if alive:
                unreadable, ended = take_refused(self.kc)
                if unreadable or ended:
                    self.cut(cell_index).refused += unreadable + ended
                if ended:
                    await resubscribe(self.kc)
            self._finish(cell, cell_index)

    async def _check_raise_for_error(self, cell: NotebookNode, cell_index: int, exec_reply: dict[str, Any] | None) -> None:
        """A reply the grader stood in for (the real one was refused) is an error in the cell, saying why."""
        content = (exec_reply or {}).get("content") or {}
        if content.get("ename") == REFUSED_ENAME:
            cell.setdefault("outputs", []).append(error_output(content))
        await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def _finish(self, cell: NotebookNode, cell_index: int) -> None:
        """Streams get their text (head, a note, tail); a cell that lost output says what, in its metadata and a last output."""
        for output in cell.get("outputs", []):
            stream = self._streams.get(id(output))
            if stream is not None:
                output["text"] = stream.text()
        self._streams = {}
        count = cell.get("execution_count")
        if not isinstance(count, int) or isinstance(count, bool):
            cell["execution_count"] = None
        cut = self.cuts.get(cell_index)
        if cut:
            note = cut.describe(self.caps)
            cell.setdefault("metadata", {}).setdefault("grader", {})["output_cut"] = {**cut.to_dict(), "note": note}
            cell.setdefault("outputs", []).append(nbformat.v4.new_output("stream", name="stderr", text=f"[grader: {note}]\n"))

    # -- messages (nbclient calls these for every output message of the running cell)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        try:
            return self._output(outs, msg, display_id, cell_index)
        except Exception:  # noqa: BLE001 -- a malformed message costs itself, never the cell or the grader
            self.cut(cell_index).refused += 1
            return None

    def _output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        kind = msg.get("msg_type")
        content = msg.get("content")
        if kind not in ("stream", "display_data", "execute_result", "error"):
            return None  # not an output (nbclient would log it and go on)
        if not isinstance(content, dict):
            self.cut(cell_index).refused += 1
            return None
        if self.clear_before_next_output:
            self._clear(outs, cell_index)
            self.clear_before_next_output = False
        if kind == "stream":
            return self._stream(outs, content, cell_index)
        if kind == "error":  # always kept (the cell's record comes from it), cut to what a report shows
            node = error_output(content)
            size, _ = measure(dict(node))
            if size > self._allowance(cell_index):  # past the budget an error keeps its name and the start of its message
                node["traceback"] = []
                node["evalue"] = clip(node["evalue"], 200)
                size, _ = measure(dict(node))
        else:
            size, deep = measure(content)
            if deep or size > min(self.caps.per_output, self._allowance(cell_index)):
                cut = self.cut(cell_index)
                cut.outputs += 1
                cut.output_chars += size
                return None
            node = nbformat.v4.output_from_msg(msg)
        if display_id:
            self._display_id_map.setdefault(display_id, {}).setdefault(cell_index, []).append(len(outs))
        outs.append(node)
        self._charge(cell_index, node, size)
        return node

    def _stream(self, outs: list[NotebookNode], content: dict[str, Any], cell_index: int) -> NotebookNode | None:
        name, text = content.get("name"), content.get("text")
        if name not in ("stdout", "stderr") or not isinstance(text, str):
            self.cut(cell_index).refused += 1
            return None
        last = outs[-1] if outs else None
        stream = self._streams.get(id(last)) if last is not None else None
        if stream is None or stream.node.get("name") != name:
            node = nbformat.v4.new_output("stream", name=name, text="")
            half = self.caps.per_output // 2
            stream = StreamBuffer(node, half, self.caps.per_output - half)
            outs.append(node)
            self._streams[id(node)] = stream
        kept, dropped, lines = stream.add(text, self._allowance(cell_index))
        self._charge(cell_index, stream.node, kept)
        if dropped:
            cut = self.cut(cell_index)
            cut.chars += dropped
            cut.lines += lines
        return stream.node

    def clear_output(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        content = msg.get("content")
        if isinstance(content, dict) and content.get("wait"):
            self.clear_before_next_output = True
        else:
            self._clear(outs, cell_index)

    def _clear(self, outs: list[NotebookNode], cell_index: int) -> None:
        self._release(cell_index, list(outs))
        outs[:] = []
        self._forget_displays(cell_index)

    def _forget_displays(self, cell_index: int) -> None:
        """The cell's outputs are gone: so are its display ids, and every id no output carries any more.

        Without the second part a loop of displays with new ids, each cleared, would grow the map without bound.
        """
        self.clear_display_id_mapping(cell_index)
        for display_id in [d for d, cells in self._display_id_map.items() if not any(cells.values())]:
            del self._display_id_map[display_id]

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        """``update_display_data`` (and a display reusing an id): replace a shown output's data, charging the change in size."""
        content = msg.get("content")
        targets = self._display_id_map.get(display_id)
        if not targets or not isinstance(content, dict):
            return
        data, metadata = content.get("data"), content.get("metadata", {})
        size, deep = measure({"data": data, "metadata": metadata})
        if deep or not isinstance(data, dict) or not isinstance(metadata, dict):
            return
        for cell_index, indices in targets.items():
            outputs = self.nb.cells[cell_index].get("outputs", []) if 0 <= cell_index < len(self.nb.cells) else []
            for index in indices:
                if not 0 <= index < len(outputs) or "data" not in outputs[index]:
                    continue
                node = outputs[index]
                old = self._sizes.get(id(node), 0)
                if size > min(self.caps.per_output, old + self._allowance(cell_index)):
                    cut = self.cut(cell_index)
                    cut.outputs += 1
                    cut.output_chars += size
                    continue
                node["data"] = nbformat.from_dict(data)
                node["metadata"] = nbformat.from_dict(metadata)
                self._charge(cell_index, node, size - old)

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        return None  # widgets: not graded, not drawn in reports, and their state would be kept without bound
