"""trace.sites: which calls count as the user's (the frame walk from an op to the cell)."""

from __future__ import annotations

import sys
from types import FrameType

import torch

from torchmagic.core.funcs import func_info
from torchmagic.trace.sites import is_library_file, locate

CELL = "<ipython-input-7-sites>"
ADD = func_info(torch.Tensor.add)
SIZE = func_info(torch.Tensor.size)


def grab() -> FrameType:
    """Stands in for the op: the frame that called it."""
    return sys._getframe(1)


def library_call() -> FrameType:  # a library function (this file is not the cell)
    return grab()


def __repr__() -> FrameType:  # named like the display hook whose ops are skipped
    return grab()


def _cell(source: str) -> dict:
    ns = {"grab": grab, "library_call": library_call, "__repr__": __repr__}
    exec(compile(source, CELL, "exec"), ns)
    return ns


def test_an_op_written_on_the_cell_line_is_depth_0():
    ns = _cell("frame = grab()\n")
    found = locate(ns["frame"], CELL, ADD)
    assert found is not None and found[1] == 0 and found[0] is ns["frame"]


def test_an_op_inside_a_library_call_is_deeper_and_its_bookkeeping_is_hidden():
    ns = _cell("frame = library_call()\n")
    found = locate(ns["frame"], CELL, ADD)
    assert found is not None
    cell_frame, depth, caller = found
    assert depth == 1 and cell_frame.f_code.co_filename == CELL and caller is ns["frame"]
    assert locate(ns["frame"], CELL, SIZE) is None  # x.size() inside F.linear: bookkeeping
    assert locate(ns["frame"], CELL, func_info(torch.Tensor._version.__get__)) is None  # a private op


def test_bookkeeping_ops_written_on_the_line_are_kept():
    ns = _cell("frame = grab()\n")
    assert locate(ns["frame"], CELL, SIZE) is not None


def test_display_code_other_files_and_no_cell_pass_through():
    ns = _cell("frame = __repr__()\n")
    assert locate(ns["frame"], CELL, ADD) is None  # ops a repr makes are not the user's
    assert locate(sys._getframe(), CELL, ADD) is None  # no frame of the cell above
    ns = _cell("frame = grab()\n")
    assert locate(ns["frame"], "<another-cell>", ADD) is None


def test_functions_defined_in_the_cell_count_as_the_cell():
    ns = _cell("def helper():\n    return grab()\nframe = helper()\n")
    found = locate(ns["frame"], CELL, ADD)
    assert found is not None and found[1] == 0 and found[0].f_code.co_name == "helper"


def test_setup_frames_are_not_computation():
    ns = _cell("class M:\n    def __init__(self):\n        self.frame = library_call()\nframe = M().frame\n")
    assert locate(ns["frame"], CELL, ADD) is not None  # __init__ is in the cell itself: depth 0
    lib = {"grab": grab}
    exec(compile("class L:\n    def __init__(self):\n        self.frame = grab()\n", "/lib/layers.py", "exec"), lib)
    cell = {"L": lib["L"]}
    exec(compile("frame = L().frame\n", CELL, "exec"), cell)
    assert locate(cell["frame"], CELL, ADD) is None  # a library module's construction


def test_library_files_and_user_files():
    assert is_library_file(torch.__file__)
    assert is_library_file("/usr/lib/python3/dist-packages/numpy/core.py")
    assert is_library_file("/venv/lib/python3.11/site-packages/transformers/models/bert.py")
    assert is_library_file(sys.modules["os"].__file__)
    assert is_library_file("<frozen runpy>")
    assert not is_library_file("<ipython-input-3-0123abcd>")
    assert not is_library_file("/tmp/ipykernel_4242/1234567.py")
    assert not is_library_file("/home/me/project/model.py")


class _Locate(torch.overrides.TorchFunctionMode):
    """Locates each op as the recorder's mode does, at the moment it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[tuple[int, str, int]]] = {}  # op -> (depth, caller name, caller line)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        found = locate(sys._getframe(1), CELL, func_info(func))
        if found is not None:
            _, depth, caller = found
            self.found.setdefault(func.__name__, []).append((depth, caller.f_code.co_name, caller.f_lineno))
        return func(*args, **(kwargs or {}))


def test_python_torch_functions_report_the_code_that_called_them():
    """F.relu reaches the mode through handle_torch_function: the caller is the user's line, past torch's glue."""
    lib = {"F": torch.nn.functional, "torch": torch}
    exec(compile("def forward(x):\n    a = F.relu(x)\n    b = F.relu(x)\n    return F.max_pool1d(a + b, 2)\n",
                 "/tmp/ipykernel_1/net.py", "exec"), lib)
    mode = _Locate()
    cell = {"forward": lib["forward"], "torch": torch}
    with mode:
        exec(compile("y = forward(torch.ones(1, 4))\n", CELL, "exec"), cell)
    assert mode.found["relu"] == [(3, "forward", 2), (3, "forward", 3)]  # two call sites (glue counted in depth)
    ((depth, name, line),) = mode.found["max_pool1d"]
    assert (name, line) == ("forward", 4) and depth >= 2  # past boolean_dispatch too
