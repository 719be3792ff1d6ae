"""Small real models the trace tests run: a CNN, a 2-layer TransformerEncoder, an MLP loop."""

from __future__ import annotations

CNN = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self, fc_in=32 * 8 * 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(fc_in, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc(x)

torch.manual_seed(0)
net = Net()
batch = torch.randn(8, 3, 32, 32)
"""

TRANSFORMER = """\
import torch
torch.manual_seed(0)
enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)
src = torch.randn(8, 16, 64)
"""

MLP_LOOP = """\
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
xb = torch.randn(32, 8)
yb = torch.randint(0, 2, (32,))
"""


def tree(rep: object) -> list[str]:
    """The module tree of a trace report as indented lines: calls and the ops they ran, in order.

    A structure snapshot: paths, types, shapes and op names; no timings.
    """
    out: list[str] = []

    def walk(items: list, depth: int) -> None:
        for kind, i in items:
            if kind == "op":
                row = rep.rows[i]  # type: ignore[attr-defined]
                var = row.variants[0]
                ins = ", ".join(str(o.shape) for o in var.inputs if o.kind == "tensor")
                outs = ", ".join(str(o.shape) for o in var.outputs)
                out.append(f"{'  ' * depth}{row.op} {ins} -> {outs} x{row.count}")
            else:
                m = rep.modules[i]  # type: ignore[attr-defined]
                if m.folded:
                    continue
                out.append(f"{'  ' * depth}[{m.path}] {m.type} {m.inputs} -> {m.outputs}"
                           + (f" x{m.repeat}" if m.repeat > 1 else "") + (f" calls={m.calls}" if m.calls > 1 else ""))
                walk(m.items, depth + 1)

    walk(rep.order, 0)  # type: ignore[attr-defined]
    return out
