"""The training-loop summary drawn: sparklines, the loss line, the flow table (exact text snapshot)."""

from __future__ import annotations

import math

from torchmagic.autograd.render_loop import loop_html, loop_lines, spark_svg, spark_text
from torchmagic.autograd.report import GradFlow, LayerFlow, LoopSummary
from torchmagic.core.lines import Block
from torchmagic.core.report import rich_to_text


def test_sparklines() -> None:
    assert spark_text([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert spark_text([1.0, math.nan, 3.0]) == "▁!█"
    assert spark_text([1e-6, 1e-3, 1.0], log=True) == "▁▄█"  # decades apart, evenly spaced on a log scale
    assert len(spark_text(list(range(1000)))) == 32
    svg = spark_svg([3.0, 2.0, math.inf, 1.0])
    assert svg.startswith("<svg") and 'fill="#c62828"' in svg and "<script" not in svg


LOOP = LoopSummary(
    steps=20, line=5, loop_line=2, loop_source="for step in range(20):", root="loss",
    losses=tuple(1.0 / (k + 1) for k in range(20)), loss_steps=tuple(range(1, 21)),
    optimizers=("opt",), optimizer_steps=20, accumulated=(), accumulated_steps=0, detailed=10,
    flow=GradFlow(steps=(1, 10, 20), update_steps=(20,), layers=(
        LayerFlow("model.0", 2, (0.5, 0.2, 0.1), (0.01,)),
        LayerFlow("model.2", 2, (1e-3, 1e-6, 1e-12), (0.0,), "vanishing", "gradient norm 1e-12 on the last step"),
    )),
)


def test_loop_lines_snapshot() -> None:
    text = rich_to_text(Block(loop_lines(LOOP)), width=120).rstrip()
    assert text == "\n".join([
        "Training loop: 20 backward() calls on loss (line 5, in the loop at line 2); opt stepped 20 times",
        "  █▄▃▂▂▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁  loss 1 → 0.05 (min 0.05 at step 20)",
        "Gradient flow: each layer's gradient norm, first → last of 3 sampled steps:",
        "  model.0        0.5 → 0.1       █▄▁  update/weight 0.01",
        "  model.2      0.001 → 1e-12     █▆▁  update/weight 0  ⚠ vanishing: gradient norm 1e-12 on the last step",
    ])


def test_loop_html() -> None:
    html = loop_html(LOOP)
    assert html.count("<svg") == 3  # the loss and one per layer
    assert "⚠ vanishing" in html and "tm-warn" in html and "<code>model.0</code>" in html
    assert "loss 1 → 0.05 (min 0.05 at step 20)" in html and "update/weight = ‖Δw‖ / ‖w‖" in html
