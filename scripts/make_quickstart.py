"""Write examples/00_quickstart.ipynb (kept as code so its cells are easy to review)."""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS = [
    ("markdown", "# torchmagic quickstart\nLoad the extension once; every magic then works in this notebook."),
    ("code", "%load_ext torchmagic\nimport torch\nimport numpy as np"),
    ("markdown", "## `%tensorinfo`: everything about a tensor"),
    (
        "code",
        "x = torch.arange(12.).reshape(3, 4)\ng = np.ones(3)\nt = torch.from_numpy(g)   # shares memory with g\n%tensorinfo x x[:, 1] t",
    ),
    ("markdown", "Modules, lists and NumPy arrays get a useful answer too."),
    (
        "code",
        "model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))\n%tensorinfo model [[1, 2], [3, 4]]",
    ),
    ("markdown", "Pictures: `(N, C, H, W)` batches are drawn with the value mapping stated."),
    ("code", "imgs = torch.rand(4, 3, 16, 16)\n%tensorinfo --image imgs"),
    ("markdown", "With no argument: every tensor and module in the namespace, largest first."),
    ("code", "%tensorinfo"),
    (
        "markdown",
        "## `%%tensorinfo`: what every line did to shapes\nBroadcasting is drawn, views and `-1` are resolved.",
    ),
    (
        "code",
        "%%tensorinfo\na = torch.ones(2, 3)\nb = torch.arange(3.)\nc = a + b\nd = c.view(-1, 2)\nd.unsqueeze(0).shape",
    ),
    (
        "markdown",
        "## `%%autograd`: the graph a cell built and the gradients it accumulated\nRun this cell twice: the second run warns that `w.grad` accumulated.",
    ),
    ("code", "w = torch.tensor([1., 2.], requires_grad=True)"),
    ("code", "%%autograd\ny = (w * w).sum()\ny.backward()\nw.grad"),
    (
        "markdown",
        "## `%%device`: run a cell on a device, timed honestly\nWithout a GPU, `--fallback cpu` runs it on the CPU and says so.",
    ),
    ("code", "%%device cuda --fallback cpu\nx = torch.randn(256, 256)\ny = x @ x\ny.sum().item()"),
    ("code", "%device model"),
]


def main() -> None:
    nb = nbformat.v4.new_notebook()
    for kind, src in CELLS:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(__file__).resolve().parents[1] / "examples" / "00_quickstart.ipynb"
    nbformat.write(nb, path)
    print(path)


if __name__ == "__main__":
    main()
