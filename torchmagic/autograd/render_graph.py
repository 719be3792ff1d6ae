"""Draw the backward graph of a report: SVG with module drill-downs in HTML, an outline in a terminal.

Pure functions of plain data.  In HTML the graph is one inline SVG; a graph
folded by module is followed by one ``<details>`` per folded box (nested the
way the modules are), each with the SVG of that module's inside, so a reader
opens a layer without any script (untrusted notebooks strip scripts).  In a
terminal a small graph is a tree from the output back to the leaves; a
folded one is an outline in the order the forward pass ran, one line per box,
indented under the modules that are open, so a Transformer fits on a screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmagic.autograd.fold import Drill
from torchmagic.autograd.graph import CallInfo, GNode, Graph, forward_order
from torchmagic.autograd.svg import graph_svg
from torchmagic.core.html import esc
from torchmagic.core.lines import Line
from torchmagic.i18n import N_, tr, trn

__all__ = ["graph_html", "graph_lines", "tree_lines", "graph_messages", "LEGEND", "TREE_LINES"]

TREE_LINES = 200
LEGEND = N_(
    "Boxes are backward functions; green boxes are leaves (they get .grad), grey dashed boxes are "
    "inputs that need no gradient, purple boxes are module calls folded into one box (open them "
    "below the graph). Arrows follow the forward pass; gradients flow back against them. Hover a "
    "box for shapes, saved tensors and gradients."
)
_BOX = '<div style="max-height:640px;overflow:auto;max-width:100%">{}</div>'


def graph_messages(g: Graph) -> list[str]:
    out = list(g.collapsed)
    if g.truncated:
        out.append(tr(
            "The graph has more nodes than the cap; {n} were not walked "
            "(%config TorchMagics.autograd_max_nodes = N raises the cap).", n=g.truncated
        ))
    if g.stale:
        out.extend(tr("In-place change after saving: {change}", change=s) for s in g.stale)
    return out


# -- HTML -----------------------------------------------------------------------------
def graph_html(g: Graph, drills: list[Drill], uid: str = "") -> str:
    """The graph's section body: legend, messages, the SVG and, when folded, the drill-downs."""
    messages = "".join(f'<div class="tm-muted">{esc(m)}</div>' for m in graph_messages(g))
    legend = esc(tr(LEGEND))
    body = f'<div class="tm-muted">{legend}</div>{messages}{_BOX.format(graph_svg(g, uid))}'
    if drills:
        body += _drills_html(drills, uid or "tm-ag")
    return body


def _drill_summary(d: Drill) -> str:
    if d.same_as:
        return tr("{path} · {type}: the same structure as {other}", path=d.path, type=d.type, other=d.same_as)
    if d.graph is None:
        return tr("{path} · {type}: not drawn here (%%autograd --expand {path} draws it)", path=d.path, type=d.type)
    return trn("{path} · {type} ({n} box)", "{path} · {type} ({n} boxes)", len(d.graph.nodes), path=d.path,
               type=d.type)


def _drills_html(drills: list[Drill], uid: str) -> str:
    """Nested ``<details>``: a drill at depth k sits inside the last drill at depth k - 1.

    Boxes whose inside looks like one already shown are named together in
    one line at the end of their level instead of being drawn again.
    """
    inside = esc(tr("Inside the module boxes (click to open):"))
    out: list[str] = [f'<div class="tm-muted">{inside}</div>']
    open_depths: list[int] = []
    same: dict[int, list[str]] = {}  # depth -> "b (as a)" waiting for the end of that level

    def close_to(depth: int) -> None:
        while open_depths and open_depths[-1] >= depth:
            level = open_depths.pop()
            _flush(out, same, level + 1)
            out.append("</details>")

    for k, d in enumerate(drills):
        close_to(d.depth)
        if d.same_as:
            same.setdefault(d.depth, []).append(tr("{path} (as {other})", path=d.path, other=d.same_as))
        elif d.graph is None:
            out.append(f'<div class="tm-muted" style="margin-left:{12 * (d.depth + 1)}px">'
                       f"{esc(_drill_summary(d))}</div>")
        else:
            svg = _BOX.format(graph_svg(d.graph, f"{uid}-d{k}"))
            out.append(f'<details style="margin-left:{12 * d.depth}px"><summary>{esc(_drill_summary(d))}'
                       f"</summary>{svg}")
            open_depths.append(d.depth)
    close_to(0)
    _flush(out, same, 0)
    return "".join(out)


def _flush(out: list[str], same: dict[int, list[str]], depth: int) -> None:
    names = same.pop(depth, [])
    if names:
        text = tr("The same inside as a box above: {names}", names=", ".join(names))
        out.append(f'<div class="tm-muted" style="margin-left:{12 * (depth + 1)}px">{esc(text)}</div>')


# -- terminal ------------------------------------------------------------------------
def _node_line(n: GNode) -> Line:
    style = {"leaf": "green", "const": "dim", "collapsed": "yellow", "more": "dim", "module": "magenta"}
    out = Line((n.title, style.get(n.kind, "bold")))
    if n.subtitle:
        out.add("  ")
        out.add(n.subtitle, "dim")
    if n.grad and n.kind == "leaf":
        out.add("  .grad=")
        out.add(n.grad, "cyan")
    if n.group and n.kind == "op":
        out.add(f"  [{n.group}]", "dim")
    if n.flag:
        out.add("  ⚠ " + (tr("NaN/inf appeared here") if n.flag == "origin" else tr("non-finite gradient")), "red")
    return out


def tree_lines(g: Graph, max_lines: int = TREE_LINES, max_depth: int = 12) -> list[Line]:
    """The graph as a tree from the outputs up to the leaves; shared nodes appear once.

    Beyond ``max_depth`` levels, a node's inputs are listed at the same
    indentation (marked ``↑``) so deep chains stay readable in a terminal.
    """
    ins = g.inputs()
    out = [Line((tr("backward graph (output → leaves)"), "bold"))]
    shown: set[int] = set()
    # (prefix for this node's own line, prefix for its children, node, depth, flattened)
    stack: list[tuple[str, str, int, int, bool]] = []
    for k, r in enumerate(reversed(g.roots)):
        last = k == 0
        stack.append(("└── " if last else "├── ", "    " if last else "│   ", r, 1, False))
    while stack:
        head, below, nid, depth, flat = stack.pop()
        if len(out) > max_lines:
            out.append(Line((tr("… {n} more nodes not listed", n=len(g.nodes) - len(shown)), "dim")))
            break
        mark = "↑ " if flat else ""
        if nid in shown:
            out.append(Line((head, "dim"), mark + "↑ ", _node_line(g.nodes[nid]), ("  " + tr("(shown above)"), "dim")))
            continue
        shown.add(nid)
        out.append(Line((head, "dim"), (mark, "dim"), _node_line(g.nodes[nid])))
        kids = ins[nid]
        deep = depth >= max_depth
        for k, child in enumerate(reversed(kids)):
            last = k == 0
            if deep:
                stack.append((below + ("└── " if last else "├── "), below + ("    " if last else "│   "),
                              child, depth, True))
            else:
                stack.append((below + ("└── " if last else "├── "), below + ("    " if last else "│   "),
                              child, depth + 1, False))
    return out


def _short_path(path: str, parent: str) -> str:
    return path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path


def _chain(call: int, calls: dict[int, CallInfo]) -> list[int]:
    out: list[int] = []
    while call >= 0 and call in calls:
        out.append(call)
        call = calls[call].parent
    return out[::-1]


@dataclass
class _Row:
    """One outline line; an open module's line holds the rows inside it."""

    line: Line
    key: str  # what the line says without names (blocks with equal keys are the same structure)
    name: str = ""
    inside: list[_Row] = field(default_factory=list)

    def signature(self) -> tuple[object, ...]:
        return (self.key, tuple(r.signature() for r in self.inside))


def graph_lines(g: Graph) -> list[Line]:
    """A folded graph in forward order: open modules as headers, their boxes indented below them.

    Runs of sibling modules with the same inside (layers 1 to 10 of a deep
    stack) are shown once, followed by one line that counts the others.
    """
    if not any(n.kind == "module" for n in g.nodes):
        return tree_lines(g)
    calls = {c.index: c for c in g.calls}
    ins = g.inputs()
    label: dict[int, str] = {}
    top: list[_Row] = []
    open_rows: list[tuple[int, _Row]] = []  # (call index, its row) of the open modules we are in
    previous = -1
    for nid in forward_order(g):
        node = g.nodes[nid]
        start = calls[node.call].parent if node.kind == "module" and node.call in calls else node.call
        chain = _chain(start, calls)
        common = 0
        while common < len(open_rows) and common < len(chain) and open_rows[common][0] == chain[common]:
            common += 1
        del open_rows[common:]
        for depth in range(common, len(chain)):
            info = calls[chain[depth]]
            parent = calls[chain[depth - 1]].path if depth else ""
            short = _short_path(info.title, parent)
            row = _Row(Line("  " * depth, (short, "bold magenta"), (f"  {info.type}  {info.shapes}".rstrip(), "dim")),
                       f"{info.type} {info.shapes}", short)
            (open_rows[-1][1].inside if open_rows else top).append(row)
            open_rows.append((chain[depth], row))
        parent_path = calls[chain[-1]].path if chain else ""
        name = _short_path(node.label, parent_path) if node.kind == "module" else node.label
        label[nid] = name
        line = Line("  " * len(chain))
        line.add(_node_line(node.but(label=name) if name != node.label else node))
        sources = [label.get(i, "") for i in ins[nid]]
        if sources and (len(sources) > 1 or ins[nid][0] != previous):
            line.add("  ← " + ", ".join(s for s in sources if s), "dim")
        what = node.label if node.kind == "op" else ""
        key = node.sub if node.kind == "module" else f"{node.kind} {what} {node.shape}"
        (open_rows[-1][1].inside if open_rows else top).append(_Row(line, key))
        previous = nid
    out = [Line((tr("backward graph, folded by module (forward order; --expand NAME opens a box)"), "bold"))]
    _emit(top, out, 0)
    return out


def _emit(rows: list[_Row], out: list[Line], depth: int) -> None:
    """Render ``rows``, a run of three or more same-structure open modules as the first and a count."""
    k = 0
    while k < len(rows):
        row = rows[k]
        run = 1
        if row.inside:
            while k + run < len(rows) and rows[k + run].inside and rows[k + run].signature() == row.signature():
                run += 1
        out.append(row.line)
        _emit(row.inside, out, depth + 1)
        if run >= 3:
            names = [r.name for r in rows[k + 1:k + run]]
            out.append(Line("  " * depth, (tr("… {n} more the same: {first} … {last}", n=run - 1, first=names[0],
                                              last=names[-1]), "dim")))
            k += run
        else:
            k += 1
