"""core.names: tensors are labelled with the names users typed."""

from __future__ import annotations

import torch

from torchmagic.core.names import is_user_name, module_names, user_names


def test_names_top_level_modules_and_containers() -> None:
    x = torch.ones(2)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    xs = [torch.zeros(1), 3]
    d = {"w": torch.zeros(3)}
    names = user_names({"x": x, "model": model, "xs": xs, "d": d, "_hidden": torch.ones(1), "Out": {}})
    assert names[id(x)] == "x"
    assert names[id(model[0].weight)] == "model.0.weight"
    assert names[id(model[1].running_mean)] == "model.1.running_mean"
    assert names[id(xs[0])] == "xs[0]"
    assert names[id(d["w"])] == "d['w']"
    # x, Linear weight+bias, BatchNorm weight+bias, its 3 buffers, xs[0], d["w"]; not _hidden
    assert len(names) == 10


def test_top_level_name_wins_over_nested() -> None:
    lin = torch.nn.Linear(1, 1)
    w = lin.weight
    assert user_names({"lin": lin, "w": w})[id(w)] == "w"


def test_ipython_history_names_are_not_user_names() -> None:
    assert not any(is_user_name(n) for n in ["_", "__", "_3", "_i2", "In", "Out"])
    assert is_user_name("x")


def test_module_names_prefer_a_top_level_name_then_the_first_path() -> None:
    import torch

    inner = torch.nn.Linear(2, 2)
    model = torch.nn.Sequential(inner, torch.nn.Sequential(torch.nn.ReLU()))
    other = torch.nn.Sequential(model)
    names = module_names({"model": model, "other": other, "layer": inner, "_hidden": torch.nn.ReLU(), "n": 1})
    assert names[id(model)] == "model" and names[id(inner)] == "layer" and names[id(model[1][0])] == "model.1.0"
    assert names[id(other)] == "other" and len(names) == 5
