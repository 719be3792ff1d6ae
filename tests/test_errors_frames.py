"""errors.frames: the any-cell error explainer, its hook and its handshake with the cell magics."""

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

    from torchmagic.errors.frames import explain_exception

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



def test_explained_marks_the_exception_object_not_its_id(monkeypatch):
    """The old handshake kept ids in a set: a later exception at a reused address went unexplained.

    Every object gets the same id here, as a freed exception's address is reused by the next one;
    only an exception that was marked itself counts as explained.
    """
    from torchmagic.errors import frames

    monkeypatch.setattr(frames, "id", lambda obj: 4242, raising=False)
    first, later = RuntimeError("explained by %%tensorinfo"), RuntimeError("a later plain cell")
    frames.mark_explained(first)
    assert frames.was_explained(first)
    assert not frames.was_explained(later)


def test_a_plain_cell_after_a_failing_trace_is_explained(ip, capture):
    """The stale-id case end to end: %%tensorinfo fails and explains, then a plain cell fails."""
    ip.run_cell("import torch\na = torch.ones(2, 3)\nb = torch.ones(4)")
    for _ in range(3):  # freed exceptions' addresses get reused: try a few times
        with capture():
            res = ip.run_cell("%%tensorinfo\na + b")
        assert isinstance(res.error_in_exec, RuntimeError)
        with capture() as cap:
            res = ip.run_cell("a + b")
        assert isinstance(res.error_in_exec, RuntimeError)
        assert "torchmagic explains" in cap.stdout
