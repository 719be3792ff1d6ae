"""The error explainer hook: installed by %load_ext, gone after %unload_ext, single after %reload_ext."""

from __future__ import annotations

import pytest


def _ours(ip):
    return [cb for cb in ip.events.callbacks["post_run_cell"] if getattr(cb, "__name__", "") == "_explain_error"]


def test_load_unload_reload_leave_one_or_none(ip, capture):
    assert len(_ours(ip)) == 1
    ip.run_line_magic("reload_ext", "torchmagic")
    assert len(_ours(ip)) == 1
    ip.run_line_magic("unload_ext", "torchmagic")
    try:
        assert _ours(ip) == []
        assert "tensorinfo" not in ip.magics_manager.magics["cell"]
        ip.run_cell("import torch")
        with capture() as cap:
            res = ip.run_cell("torch.ones(2, 3) @ torch.ones(4, 5)")
        assert isinstance(res.error_in_exec, RuntimeError)
        assert "torchmagic" not in cap.stdout  # nothing left behind
    finally:
        ip.run_line_magic("load_ext", "torchmagic")
    assert len(_ours(ip)) == 1


def test_successful_cells_untouched(ip, capture):
    with capture() as cap:
        res = ip.run_cell("import torch\nx = torch.ones(2)\nx")
    assert res.success and "torchmagic" not in cap.stdout


def test_plain_errors_not_explained(ip, capture):
    with capture() as cap:
        res = ip.run_cell("1 / 0")
    assert isinstance(res.error_in_exec, ZeroDivisionError)
    assert "torchmagic" not in cap.stdout


def test_explainer_never_imports_torch(monkeypatch):
    """Without torch imported by the user, an error costs no torch import."""
    import sys

    from torchmagic.trace.failing import explain_exception

    monkeypatch.delitem(sys.modules, "torch")
    try:
        raise RuntimeError("The size of tensor a (3) must match the size of tensor b (4)")
    except RuntimeError as exc:
        assert explain_exception(exc, None) is None
    assert "torch" not in sys.modules


@pytest.mark.parametrize(
    "cell",
    [
        "%%device cpu\nc = torch.ones(3) + m",
        "%%autograd\nw = torch.ones(3, requires_grad=True)\nw.add_(1)",
        "%%tensorinfo\nc = torch.ones(3) + m",
    ],
)
def test_not_repeated_under_torchmagic_cell_magics(ip, capture, cell):
    """Those magics show their own explanation; the default explainer stays quiet."""
    ip.run_cell("import torch\nm = torch.ones(3, device='meta')")
    with capture() as cap:
        res = ip.run_cell(cell)
    assert isinstance(res.error_in_exec, RuntimeError)
    assert "torchmagic explains" not in cap.stdout

