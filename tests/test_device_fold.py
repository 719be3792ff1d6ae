"""Folding repeated layers of the per-module table (pure functions of rows)."""

from __future__ import annotations

from torchmagic.device.fold import fold_rows, label, named, pattern_of
from torchmagic.device.report import ModuleStat


def row(path: str, type_name: str, depth: int, ms: float = 1.0, backward: float | None = 2.0) -> ModuleStat:
    return ModuleStat(path=path, type_name=type_name, depth=depth, calls=1, forward_ms=ms, backward_ms=backward,
                      allocated_bytes=100, kept_bytes=10, grad_bytes=5, params=7, out_shape="(2, 4)")


def encoder(layers: int) -> list[ModuleStat]:
    rows = [row("enc", "TransformerEncoder", 0)]
    for i in range(layers):
        rows += [row(f"enc.layers.{i}", "TransformerEncoderLayer", 1),
                 row(f"enc.layers.{i}.self_attn", "MultiheadAttention", 2),
                 row(f"enc.layers.{i}.linear1", "Linear", 2, backward=None if i else 1.0)]
    return rows


def test_pattern_takes_the_list_indices_out() -> None:
    assert pattern_of("enc.layers.3.linear1") == ("enc.layers.#.linear1", (3,))
    assert pattern_of("blocks.1.layers.10") == ("blocks.#.layers.#", (1, 10))
    assert pattern_of("net.conv1") == ("net.conv1", ())


def test_a_stack_of_layers_folds_into_one_row_per_child_with_sums() -> None:
    folded = fold_rows(encoder(12))
    assert [(r.path, r.instances, r.depth) for r in folded] == [
        ("enc", 1, 0),
        ("enc.layers.0–11", 12, 1),
        ("enc.layers.0–11.self_attn", 12, 2),
        ("enc.layers.0–11.linear1", 12, 2),
    ]
    lin = folded[3]
    assert (lin.calls, lin.forward_ms, lin.allocated_bytes, lin.kept_bytes, lin.params) == (12, 12.0, 1200, 120, 84)
    assert lin.backward_ms == 1.0  # only layer 0's backward ran through it
    assert lin.out_shape == "(2, 4)"
    assert [r.name for r in named(folded)] == ["enc", "layers.0–11", "self_attn", "linear1"]


def test_short_runs_and_gaps_are_not_folded() -> None:
    two = fold_rows(encoder(2))
    assert len(two) == 7  # fewer than FOLD_MIN layers
    cnn = [row("features", "Sequential", 0)] + [
        row(f"features.{i}", kind, 1) for i, kind in enumerate(["Conv2d", "ReLU", "MaxPool2d"] * 3)
    ]
    # convolutions at 0, 3, 6 are three different layers, not a stack
    assert fold_rows(cnn) == cnn
    mixed = [row("m", "Sequential", 0)] + [row(f"m.{i}", "Linear" if i % 2 else "ReLU", 1) for i in range(4)]
    assert fold_rows(mixed) == mixed


def test_different_types_at_the_same_place_stay_apart() -> None:
    rows = [row("m", "Sequential", 0)] + [row(f"m.{i}", "Linear", 1) for i in range(3)] + [row("m.3", "ReLU", 1)]
    assert [(r.path, r.instances) for r in fold_rows(rows)] == [("m", 1), ("m.0–2", 3), ("m.3", 1)]


def test_different_output_shapes_leave_the_folded_shape_blank() -> None:
    rows = [row(f"m.{i}", "Linear", 1) for i in range(3)]
    rows[1].out_shape = "(2, 8)"
    assert fold_rows(rows)[0].out_shape == ""


def test_names_are_relative_to_the_parent_row() -> None:
    rows = [row("model", "Sequential", 0), row("model.0", "Linear", 1), row("model.0.inner", "Linear", 2),
            row("model.1", "ReLU", 1), row("<Linear>", "Linear", 0), row("other.x", "Linear", 2)]
    assert [r.name for r in named(rows)] == ["model", "0", "inner", "1", "<Linear>", "other.x"]


def test_label_of_the_modules_that_made_a_tensor() -> None:
    assert label(["enc.layers.0.linear1"]) == "enc.layers.0.linear1"
    assert label([f"enc.layers.{i}.linear1" for i in range(12)]) == "enc.layers.0–11.linear1"
    assert label(["a.0", "a.2"]) == "a.0 (+1 more)"
    assert label(["net.conv1", "net.conv2", "net.conv1"]) == "net.conv1 (+1 more)"
    assert label([]) == "" and label(["", ""]) == ""
