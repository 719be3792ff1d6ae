"""AutogradWatcher as a torch function mode: what escapes autograd, and backward calls handed on."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tests.autograd_cells import watched


def test_no_grad_detach_and_inference_mode_are_listed_with_line_and_names() -> None:
    code = (
        "w = torch.ones(3, requires_grad=True)\n"
        "with torch.no_grad():\n"
        "    a = w * 2\n"
        "d = w.detach()\n"
        "with torch.inference_mode():\n"
        "    b = w + 1\n"
    )
    ns: dict[str, Any] = {}
    log = watched(code, ns)
    rows = [(u.kind, u.line, u.source, u.inputs) for u in log.untracked]
    assert rows == [
        ("no_grad", 3, "a = w * 2", ("w",)),
        ("detach", 4, "d = w.detach()", ("w",)),
        ("inference_mode", 6, "b = w + 1", ("w",)),
    ]
    assert list(log.live_cuts().values()) == ["w.detach() (line 4)"]
    assert log.calls_total == 0 and log.notes == []


def test_repeats_count_and_ops_on_tensors_without_grad_are_not_listed() -> None:
    code = (
        "w = torch.ones(2, requires_grad=True)\nc = torch.ones(2)\n"
        "for _ in range(3):\n    with torch.no_grad():\n        y = w * 2\n        z = c * 2\n"
    )
    log = watched(code, {})
    (row,) = log.untracked
    assert (row.line, row.count) == (5, 3)


def test_optimizer_steps_and_init_are_not_the_cells_doing() -> None:
    code = (
        "model = nn.Linear(2, 1)\nnn.init.zeros_(model.bias)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "model(torch.ones(1, 2)).sum().backward()\nopt.step()\n"
    )
    log = watched(code, {"nn": nn})
    assert log.untracked == []
    assert log.calls_total == 1 and log.calls[0].root == "model(torch.ones(1, 2)).sum()"


def test_data_changed_after_saving_is_a_warning() -> None:
    code = "w = torch.ones(2, requires_grad=True)\ny = (w * w).sum()\nw.data.mul_(2)\n"
    ns: dict[str, Any] = {}
    log = watched(code, ns)
    (note,) = log.notes
    assert note.kind == "data-inplace" and note.line == 3 and note.subject == "w"
    assert "MulBackward0" in note.message and "silently" in note.message


def test_backward_calls_reach_the_recorder_and_values_are_untouched() -> None:
    code = "w = torch.tensor([1., 2.], requires_grad=True)\nloss = (w ** 2).sum()\nloss.backward()\n"
    ns: dict[str, Any] = {}
    log = watched(code, ns)
    assert log.calls_total == 1 and log.calls[0].line == 3
    assert torch.equal(ns["w"].grad, torch.tensor([2.0, 4.0]))
    assert [ref() is ns["loss"] for ref in log.roots] == [True]


def test_the_mode_leaves_the_stack_as_it_found_it() -> None:
    depth = torch._C._len_torch_function_stack()
    try:
        watched("x = torch.ones(1, requires_grad=True)\nraise ValueError('cell')\n", {})
    except ValueError:
        pass
    assert torch._C._len_torch_function_stack() == depth
