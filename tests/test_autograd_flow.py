"""Gradient flow: per-layer norms and ratios, and the vanishing / exploding / non-finite / dead rules."""

from __future__ import annotations

import math

from torchmagic.autograd.flow import GROWTH, grad_flow, layer_of


def test_layers_combine_their_parameters_and_get_flags() -> None:
    names = {1: "m.0.weight", 2: "m.0.bias", 3: "m.1.weight", 4: "m.2.weight", 5: "m.3.weight", 6: "w"}
    samples = [
        (1, {1: 3.0, 2: 4.0, 3: 1.0, 4: 0.0, 5: 1.0, 6: 2.0}),
        (2, {1: 3.0, 2: 4.0, 3: 10.0, 4: 0.0, 5: 1e-9, 6: 2.0}),
        (4, {1: 3.0, 2: 4.0, 3: GROWTH * 1.0, 4: 0.0, 5: 1e-9, 6: math.nan}),
    ]
    updates = [(4, {1: (0.3, 3.0), 2: (0.4, 4.0)})]
    flow = grad_flow(samples, updates, names)
    assert flow is not None and flow.steps == (1, 2, 4) and flow.update_steps == (4,)
    rows = {layer.name: layer for layer in flow.layers}
    assert rows["m.0"].norms == (5.0, 5.0, 5.0) and rows["m.0"].tensors == 2
    assert math.isclose(rows["m.0"].ratios[0], 0.1) and rows["m.0"].flag == ""
    assert rows["m.1"].flag == "exploding" and "grew from 1 to 1000" in rows["m.1"].why
    assert rows["m.2"].flag == "no gradient"
    assert rows["m.3"].flag == "vanishing" and "of the largest layer's gradient norm" in rows["m.3"].why
    assert rows["w"].flag == "non-finite" and "step 4" in rows["w"].why
    assert grad_flow([], [], {}) is None
    assert layer_of("enc.layers.0.linear1.weight") == "enc.layers.0.linear1" and layer_of("w") == "w"
