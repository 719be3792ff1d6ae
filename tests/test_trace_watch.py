"""trace.watch: %tensorinfo --nan on, the NaN watch for any cell."""

from __future__ import annotations

import torch
import torch.nn.modules.module as module_mod

from torchmagic.trace.report import NanReport


def _stack() -> int:
    return torch._C._len_torch_function_stack()


def _shown(ip, capture, cell: str):
    with capture() as cap:
        res = ip.run_cell(cell)
    return res, cap.stdout + "".join(o.data.get("text/plain", "") for o in cap.outputs)


def test_on_reports_the_first_nan_of_each_cell_and_off_stops(ip, capture):
    _shown(ip, capture, "%tensorinfo --nan on")
    res, out = _shown(ip, capture, "import torch\nx = torch.tensor([1., 0., -1., 4.])\nb = torch.log(x)\nc = b - b")
    assert res.success and _stack() == 0
    assert "NaN/Inf line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)" in " ".join(
        out.split())
    assert "1 later op gave non-finite values too" in out
    _, out = _shown(ip, capture, "y = x * 2")
    assert "NaN" not in out  # a clean cell: nothing said
    _shown(ip, capture, "%tensorinfo --nan off")
    _, out = _shown(ip, capture, "z = torch.log(x)")
    assert "NaN" not in out and _stack() == 0


def test_the_trait_and_results_bit_identical(ip, capture, options):
    ip.run_cell("import torch\ntorch.manual_seed(0)\nw = torch.randn(5, 5)\nbare = (w @ w).exp().log().softmax(-1)")
    with options(nan_watch=True):
        res, _ = _shown(ip, capture, "watched = (w @ w).exp().log().softmax(-1)")
    assert res.success and torch.equal(ip.user_ns["bare"], ip.user_ns["watched"])


def test_inside_a_model_the_line_is_the_forward_line(ip, capture, options):
    ip.run_cell("import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
                "        h = x * 2\n        return torch.sqrt(h - 3)\nm = M()")
    with options(nan_watch=True):
        res, out = _shown(ip, capture, "y = m(torch.ones(4))")
    assert res.success
    text = " ".join(out.split())
    assert "line 5: torch.sqrt(h - 3) in M.forward made 4 NaN (square root of a negative number)" in text


def test_a_mode_the_cell_leaves_on_stays_and_ours_goes(ip, capture, options):
    ip.run_cell("import torch\nfrom torch.overrides import TorchFunctionMode\n"
                "class Mine(TorchFunctionMode):\n    def __torch_function__(self, f, t, a=(), k=None):\n"
                "        return f(*a, **(k or {}))\nmine = Mine()")
    with options(nan_watch=True):
        _shown(ip, capture, "mine.__enter__()\ny = torch.ones(2) + 1")
    stack = torch.overrides._get_current_function_mode_stack()
    try:
        assert stack == [ip.user_ns["mine"]]
    finally:
        ip.user_ns["mine"].__exit__(None, None, None)
    assert _stack() == 0


def test_own_cell_magics_failures_interrupts_and_unload(ip, capture, options):
    with options(nan_watch=True):
        _, out = _shown(ip, capture, "%%tensorinfo\nimport torch\nq = torch.log(torch.tensor([-1.]))")
        assert out.count("NaN/Inf line") == 1  # the trace said it; the watch stayed out of %%tensorinfo
        res, _ = _shown(ip, capture, "q = torch.log(torch.tensor([-1.]))\nraise KeyboardInterrupt")
        assert isinstance(res.error_in_exec, KeyboardInterrupt) and _stack() == 0
        res, out = _shown(ip, capture, "q = torch.log(torch.tensor([-1.]))\n1 / 0")
        assert isinstance(res.error_in_exec, ZeroDivisionError) and "NaN/Inf line 1" in out
        ip.events.trigger("pre_run_cell", None)  # as if a cell began, then the extension is unloaded
        assert _stack() == 1
        ip.run_line_magic("unload_ext", "torchmagic")
        try:
            assert _stack() == 0
        finally:
            ip.run_line_magic("load_ext", "torchmagic")
    assert not module_mod._global_forward_hooks


def test_report_is_plain_data(ip, capture, options):
    from torchmagic.trace.watch import CellNanWatch

    watch = CellNanWatch()
    watch.start()
    try:
        exec(compile("import torch\nv = torch.tensor([0.]) / 0", "<ipython-input-5-nan>", "exec"), {})
    finally:
        report = watch.stop()
    assert isinstance(report, NanReport) and report.origin.op in ("div", "__truediv__")
    assert report.to_dict()["origin"]["made"] == "1 NaN" and "0/0" in report.origin.why
