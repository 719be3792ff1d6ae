"""trace.nans: the first op that made NaN/±Inf from finite inputs, found in batches, read once on devices."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from torchmagic.trace.nans import BATCH, LARGE, NanWatch, counts_text, why, written

NAN, INF = float("nan"), float("inf")


def _run(watch: NanWatch, steps: list[tuple[str, tuple, torch.Tensor]]) -> None:
    for i, (op, args, out) in enumerate(steps):
        watch.add(i, op, args, {}, out)


def test_log_of_negative_and_zero_is_the_origin_and_later_ops_carry_it():
    x = torch.tensor([1.0, 0.0, -1.0, 4.0])
    b = torch.log(x)
    c = b - b
    w = NanWatch()
    _run(w, [("mul", (x, 2.0), x * 2), ("log", (x,), b), ("__sub__", (b, b), c), ("sum", (c,), c.sum())])
    found = w.finish()
    assert found is not None and (found.tag, found.op) == (1, "log")
    assert (found.nan, found.posinf, found.neginf) == (1, 0, 1) and found.made() == "1 NaN and 1 −Inf"
    assert found.why == "log of a negative number and of 0" and not found.came_in
    assert w.carried == {1: 1, 2: 1, 3: 1} and w.checked == 4


def test_values_from_before_are_not_blamed_on_the_op_that_used_them():
    x = torch.tensor([1.0, NAN])
    w = NanWatch()
    _run(w, [("__mul__", (x, 2.0), x * 2)])
    found = w.finish()
    assert found is not None and found.came_in and found.why == ""


def test_finite_cells_find_nothing_and_overflow_is_explained():
    w = NanWatch()
    a = torch.full((3,), 1e30)
    _run(w, [("__add__", (a, a), a + a)])
    assert w.finish() is None
    w = NanWatch()
    _run(w, [("__mul__", (a, a), a * a)])
    found = w.finish()
    assert found is not None and found.posinf == 3 and found.why.startswith("overflow: results beyond float32's")


def test_a_batch_whose_sum_overflows_is_checked_output_by_output():
    big = torch.full((4,), 3e38)
    w = NanWatch()
    _run(w, [("ones", (), big.clone()) for _ in range(3)])  # each finite, their sum is not
    assert w.finish() is None and w.checked == 3


def test_an_in_place_write_is_preceded_by_a_check():
    x = torch.tensor([-1.0, 1.0])
    b = torch.log(x)
    w = NanWatch()
    w.add(0, "log", (x,), {}, b)
    w.before_write(written(True, (b,), {}))
    b.nan_to_num_()  # without the check first, the NaN would be gone by the time we read
    found = w.finish()
    assert found is not None and found.tag == 0 and found.nan == 1
    w = NanWatch()
    c = torch.log(x)
    w.add(0, "log", (x,), {}, c)
    w.before_write(written(False, (x, x), {"out": c[:1]}))  # out= a view of a held output: same memory
    assert not w.pending and w.found is not None


def test_writes_elsewhere_leave_the_batch_alone():
    x = torch.tensor([1.0, 2.0])
    param = torch.zeros(2)
    w = NanWatch()
    w.add(0, "mul", (x,), {}, x * 2)
    w.before_write(written(True, (param,), {}))  # an optimizer updating a parameter
    assert len(w.pending) == 1
    w.before_write(torch.ones(2, device="meta"))  # memory we cannot tell: check now
    assert not w.pending


def test_batches_and_large_outputs_are_checked_early_and_let_go():
    w = NanWatch()
    small = [torch.ones(2) for _ in range(BATCH - 1)]
    for i, t in enumerate(small):
        w.add(i, "ones", (), {}, t)
    assert len(w.pending) == BATCH - 1
    w.add(99, "ones", (), {}, torch.ones(LARGE + 1))
    assert not w.pending and w.checked == BATCH
    t = torch.ones(3)
    ref = weakref.ref(t)
    w.add(100, "ones", (), {}, t)
    del t
    gc.collect()
    assert ref() is not None  # held until the next check, never longer
    w.finish()
    gc.collect()
    assert ref() is None and not w.pending


def test_integer_bool_and_odd_outputs_are_not_checked():
    w = NanWatch()
    w.add(0, "arange", (), {}, torch.arange(3))
    w.add(1, "gt", (), {}, torch.ones(2) > 0)
    w.add(2, "ones", (), {}, torch.ones(2, device="meta"))
    w.add(3, "list", (), {}, [torch.ones(1)])
    assert w.finish() is None and w.checked == 0 and not w.pending  # a meta tensor has no values to read


def test_read_once_at_the_end_without_reading_per_op(monkeypatch):
    """The accelerator path on the CPU: norms stay where they are; one read per finish, none per op."""
    reads: list[int] = []
    syncing = []
    for name in ("item", "tolist", "__bool__", "cpu"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _r=real, _n=name, **k: (syncing.append(_n), _r(
            self, *a, **k))[1])
    w = NanWatch(defer=True, read=lambda t: reads.append(len(t)) or torch.Tensor.tolist(t))
    x = torch.tensor([1.0, -1.0])
    for i in range(3 * BATCH):
        out = torch.sqrt(x) if i == BATCH + 5 else x * 1
        w.add(i, "sqrt" if i == BATCH + 5 else "mul", (x,), {}, out)
    assert syncing == [] and reads == []  # three batches queued, nothing read
    syncing.clear()
    found = w.finish()
    assert len(reads) == 1 and w.reads == 1
    assert found is not None and (found.tag, found.op, found.kind, found.nan) == (BATCH + 5, "sqrt", "NaN", -1)
    assert found.made() == "NaN" and not found.came_in


def test_read_at_the_end_still_tells_inputs_that_held_nan_already():
    w = NanWatch(defer=True)
    x = torch.tensor([NAN, 1.0])
    w.add(0, "mul", (x,), {}, x * 2)
    found = w.finish()
    assert found is not None and found.came_in


@pytest.mark.parametrize(
    "op, args, expected",
    [
        ("sqrt", (torch.tensor([-4.0]),), "square root of a negative number"),
        ("rsqrt", (torch.tensor([0.0]),), "of 0"),
        ("__truediv__", (torch.tensor([1.0, 0.0]), 0.0), "division of a nonzero number by 0 and 0/0"),
        ("__rtruediv__", (torch.tensor([0.0]), 1.0), "division of a nonzero number by 0"),
        ("reciprocal", (torch.tensor([0.0]),), "division of a nonzero number by 0"),
        ("__pow__", (torch.tensor([-8.0]), 0.5), "a negative number to a fractional power"),
        ("pow", (torch.tensor([0.0]), -1.0), "0 to a negative power"),
        ("acos", (torch.tensor([2.0]),), "acos of a number outside [-1, 1]"),
        ("log1p", (torch.tensor([-1.0]),), "of -1"),
        ("fmod", (torch.tensor([1.0]), 0.0), "remainder of a division by 0"),
        ("log_", (torch.tensor([-1.0]),), "log of a negative number"),
        ("exp", (torch.tensor([100.0]),), "overflow"),
    ],
)
def test_why(op, args, expected):
    x = args[0]
    fn = {"sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "__truediv__": lambda a, b: a / b,
          "__rtruediv__": lambda a, b: b / a, "reciprocal": torch.reciprocal, "__pow__": lambda a, b: a ** b,
          "pow": torch.pow, "acos": torch.acos, "log1p": torch.log1p, "fmod": torch.fmod,
          "log_": torch.log, "exp": torch.exp}[op]
    out = fn(*args)
    assert expected in why(op, args, out)
    assert not torch.isfinite(out).all() and torch.equal(x, args[0])  # reading never changed the input


def test_counts_text():
    assert counts_text(1, 0, 1) == "1 NaN and 1 −Inf"
    assert counts_text(2, 1, 3) == "2 NaN, 1 +Inf and 3 −Inf"
    assert counts_text(-1, -1, -1) == "NaN or ±Inf"


def test_dtypes_that_cannot_be_summed_are_left_alone():
    """The OpInfo sweep found it: CPU has no sum for complex32 (``chalf``)."""
    w = NanWatch()
    x = torch.ones(3)
    w.add(0, "chalf", (x,), {}, x.chalf())
    assert w.finish() is None and w.checked == 0


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_nested_tensors_are_left_alone():
    """The fuzz test found it: a nested tensor has no single shape to stack by."""
    w = NanWatch()
    nt = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    w.add(0, "mul", (nt,), {}, nt * 2)
    w.add(1, "mul", (), {}, torch.ones(2) * 2)
    assert w.finish() is None and w.checked == 1
