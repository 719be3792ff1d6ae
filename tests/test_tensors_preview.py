"""tensors.preview: small tensors whole with their nesting, large ones head and tail, aligned columns."""

from __future__ import annotations

import torch

from torchmagic.tensors.preview import fmt_value, preview, preview_label


def test_the_unsqueeze_lesson_shows_all_six_values_and_the_new_brackets() -> None:
    """Issue 14: `r = o.unsqueeze(1)`, (2, 1, 3), previewed only r[0, :, :]."""
    o = torch.tensor([[1.088, 1.768, 1.2], [1.5, 1.3, 1.1]])
    r = o.unsqueeze(1)
    assert preview(r, 6, 4, whole=64) == "[[[1.088, 1.768,   1.2]],\n\n [[  1.5,   1.3,   1.1]]]"
    assert preview_label("r", 3, whole=True) == "r"
    assert preview(o, 6, 4, whole=64) == "[[1.088, 1.768,   1.2],\n [  1.5,   1.3,   1.1]]"


def test_nesting_follows_print_for_any_rank() -> None:
    text = preview(torch.arange(24).reshape(2, 3, 4), 6, 4, whole=64)
    assert text.splitlines() == [
        "[[[ 0,  1,  2,  3],", "  [ 4,  5,  6,  7],", "  [ 8,  9, 10, 11]],", "",
        " [[12, 13, 14, 15],", "  [16, 17, 18, 19],", "  [20, 21, 22, 23]]]",
    ]
    four = preview(torch.zeros(2, 1, 2, 2), 6, 4, whole=64)
    assert four.count("[") == 1 + 2 + 2 + 4 and four.count("0.") == 8
    assert preview(torch.tensor(2.0), 4, 4, whole=64) == "2."
    assert preview(torch.tensor([1.5, 2.0]), 4, 4, whole=64) == "[1.5,  2.]"


def test_large_tensors_keep_head_and_tail_of_their_first_matrix() -> None:
    text = preview(torch.arange(100).reshape(10, 10), 4, 4, whole=64)
    lines = text.splitlines()
    assert lines[0] == "[[ 0,  1, …,  8,  9],"
    assert " …," in lines and lines[-1] == " [90, 91, …, 98, 99]]"
    assert preview(torch.zeros(4, 4, 5), 6, 4, whole=64).count("\n") == 3  # only x[0]: 4 rows
    assert preview_label("x", 4) == "x[0, 0, :, :]" and preview_label("x", 2) == "x"
    # the threshold is the option: 65 elements with whole=64 are cut, with whole=65 shown whole
    assert "…" in preview(torch.arange(65), 6, 4, whole=64)
    assert "…" not in preview(torch.arange(65), 6, 4, whole=65)


def test_values_are_written_like_torch_writes_them() -> None:
    assert fmt_value(1.0, 4) == "1." and fmt_value(1.23456, 4) == "1.235" and fmt_value(True, 4) == "True"
    assert fmt_value(float("nan"), 4) == "nan" and fmt_value(float("-inf"), 4) == "-inf"
    assert fmt_value(1e-9, 4) == "1e-09" and fmt_value(3 + 4j, 4) == "3+4j"
    assert preview(torch.tensor([True, False]), 4, 4, whole=64) == "[ True, False]"
