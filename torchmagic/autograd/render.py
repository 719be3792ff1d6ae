"""Draw an :class:`AutogradReport`: HTML (with the inline SVG graph) and rich.

Pure functions of the report: no torch, no state.  Every user-derived string
goes through ``esc`` (HTML/SVG) or ``txt`` (rich), so a tensor named
``<script>`` or ``[bold]`` prints literally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from torchmagic.autograd.graph import Graph
from torchmagic.autograd.values import fmt_number
from torchmagic.core.html import badge, details, esc, table, wrap
from torchmagic.core.meta import fmt_shape
from torchmagic.core.term import join, txt

if TYPE_CHECKING:
    from torchmagic.autograd.report import AutogradReport, BackwardCall, Jacobian, LeafGrad

__all__ = ["to_html", "to_rich", "graph_tree"]

TREE_LINES = 200
FULL_CALLS = 3  # backward calls shown with their full leaf table; later ones in one line
FULL_LEAVES = 24  # leaf rows per call; accumulated leaves come first
LEGEND = (
    "Boxes are backward functions; green boxes are leaves (they get .grad), grey dashed boxes "
    "are constants (no gradient). Arrows follow the forward pass; gradients flow back against "
    "them. Hover a box for shapes, saved tensors and gradients."
)


_BOX_WARN = ' style="border-left:3px solid var(--jp-warn-color1, #b35900);padding:2px 8px;margin:4px 0"'
_BOX_ERROR = ' style="border-left:3px solid var(--jp-error-color1, #c62828);padding:2px 8px;margin:4px 0"'


def _summary(report: AutogradReport) -> list[str]:
    parts: list[str] = []
    g = report.graph
    if g is not None and g.nodes:
        parts.append(f"{g.total_nodes} graph nodes")
    if report.calls_total:
        parts.append(f"{report.calls_total} backward call{'s' if report.calls_total != 1 else ''}")
    if report.accumulated:
        parts.append("gradient accumulated")
    if report.untracked:
        parts.append(f"{len(report.untracked)} untracked")
    return parts


# -- HTML -------------------------------------------------------------------------
def _call_html(call: BackwardCall) -> str:
    head = (
        f'<div class="tm-title">#{call.index} <code>{esc(call.kind)}</code> on '
        f'<code>{esc(call.root)}</code> {esc(fmt_shape(call.root_shape))} {esc(call.root_dtype)}'
        f' <span class="tm-muted">line {call.line}: <code>{esc(call.source)}</code></span></div>'
    )
    meta = f'<div class="tm-muted">gradient: {esc(call.gradient)}'
    if call.retain_graph:
        meta += " · retain_graph=True"
    meta += f" · {call.graph_nodes} nodes</div>"
    if call.error:
        meta += f'<div class="tm-error">raised: {esc(call.error)}</div>'
    rows = []
    leaves, hidden = _leaves_to_show(call)
    for leaf in leaves:
        flag = (
            '<span class="tm-warn">⚠ accumulated</span>' if leaf.accumulated else '<span class="tm-ok">ok</span>'
        )
        rows.append([
            f"<code>{esc(leaf.name)}</code>",
            esc(f"{fmt_shape(leaf.shape)} {leaf.dtype}"),
            f"<code>{esc(leaf.before.text)}</code>",
            f"<code>{esc(leaf.after.text)}</code>",
            f"<code>{esc(leaf.added)}</code>",
            flag,
        ])
    body = ""
    if rows:
        body = table(["leaf", "shape", ".grad before", ".grad after", "this call added", ""], rows, escape=False)
    if hidden:
        body += '<div class="tm-muted">' + esc(hidden) + '</div>'
    if call.results:
        body += table(["input", "gradient returned"], [[n, v] for n, v in call.results])
    return head + meta + body


def _leaves_to_show(call: BackwardCall) -> tuple[list[LeafGrad], str]:
    """At most FULL_LEAVES rows, accumulated leaves first; a line saying what was left out."""
    if len(call.leaves) <= FULL_LEAVES:
        return list(call.leaves), ""
    flagged = [leaf for leaf in call.leaves if leaf.accumulated]
    shown = (flagged + [leaf for leaf in call.leaves if not leaf.accumulated])[:FULL_LEAVES]
    rest = len(call.leaves) - len(shown)
    more_flagged = len(flagged) - sum(1 for leaf in shown if leaf.accumulated)
    note = f"… and {rest} more leaves"
    note += f" ({more_flagged} of them accumulated)" if more_flagged else " (none accumulated)"
    return shown, note + "; report.to_dict() has all of them."


def _jacobian_html(jac: Jacobian) -> str:
    out = f'<div class="tm-title">Jacobian of <code>{esc(jac.output)}</code> {esc(fmt_shape(jac.output_shape))}</div>'
    if jac.note:
        out += f'<div class="tm-muted">{esc(jac.note)}</div>'
    if not jac.matrix:
        return out
    rows = [[r, *(fmt_number(v) for v in row)] for r, row in zip(jac.rows, jac.matrix)]
    out += table(["J = ∂out/∂leaf", *jac.columns], rows)
    vrows = [["v (gradient=)", *(fmt_number(x) for x in jac.v)]]
    out += table(["", *jac.rows], vrows)
    prod = [["v·J", *(fmt_number(x) for x in jac.vj)]]
    if jac.backward:
        prod.append(["backward() gave", *(fmt_number(x) for x in jac.backward)])
    out += table(["", *jac.columns], prod)
    if jac.matches is not None:
        cls, word = ("tm-ok", "v·J matches what backward() computed") if jac.matches else (
            "tm-error", "v·J differs from what backward() computed")
        out += f'<div class="{cls}">{esc(word)}</div>'
    return out


def to_html(report: AutogradReport) -> str:
    parts = [f'<div class="tm-title">{esc(report.title)} ']
    parts.extend(badge(s) for s in _summary(report))
    parts.append("</div>")
    if report.explanation is not None:
        ex = report.explanation
        parts.append(
            f'<div{_BOX_ERROR}><div class="tm-error"><b>{esc(ex.error)}</b></div>'
            f'<div>{esc(ex.plain)}</div><div><b>Fix:</b> {esc(ex.fix)}</div></div>'
        )
    for note in report.notes:
        cls = "tm-warn" if note.kind != "info" else "tm-muted"
        icon = "⚠ " if note.kind != "info" else ""
        times = f" (×{note.count} in this cell)" if note.count > 1 else ""
        fix = f'<div class="tm-muted"><b>Fix:</b> {esc(note.fix)}</div>' if note.fix else ""
        box = _BOX_WARN if note.kind != "info" else ""
        parts.append(f'<div{box}><div class="{cls}">{icon}{esc(note.message)}{esc(times)}</div>{fix}</div>')
    if report.nothing:
        parts.append(f'<div class="tm-muted">{esc(report.nothing)}</div>')
    g = report.graph
    if g is not None and g.nodes:
        messages = "".join(f'<div class="tm-muted">{esc(m)}</div>' for m in _graph_messages(g))
        svg = report.svg
        box = f'<div style="max-height:560px;overflow:auto;max-width:100%">{svg}</div>'
        parts.append(details("Backward graph", f'<div class="tm-muted">{esc(LEGEND)}</div>{messages}{box}', open_=True))
    if report.leaves:
        parts.append(table(["leaf", ".grad"], report.leaves))
    if report.calls:
        shown, rest = report.calls[:FULL_CALLS], report.calls[FULL_CALLS:]
        body = "".join(_call_html(c) for c in shown)
        if rest:
            body += details(f"{len(rest)} more recorded call(s)", "".join(_call_html(c) for c in rest))
        parts.append(details(f"backward() calls ({report.calls_total})", body, open_=True))
    if report.untracked:
        rows = [
            [str(u.line), u.source, _untracked_word(u.kind), u.op, ", ".join(u.inputs),
             u.output or "", str(u.count)]
            for u in report.untracked
        ]
        parts.append(details(
            "Not tracked by autograd",
            table(["line", "code", "why", "op", "from", "result", "times"], rows),
            open_=True,
        ))
    for jac in report.jacobians:
        parts.append(details("Jacobian and v·J", _jacobian_html(jac), open_=True))
    return wrap("".join(parts), "autograd")


def _untracked_word(kind: str) -> str:
    return {
        "no_grad": "under torch.no_grad(): result has no grad_fn",
        "inference_mode": "under inference_mode(): an inference tensor",
        "detach": ".detach(): graph cut here",
        "data": ".data: autograd does not see changes through it",
    }.get(kind, kind)


def _graph_messages(g: Graph) -> list[str]:
    out = list(g.collapsed)
    if g.truncated:
        out.append(
            f"The graph has more nodes than the cap; {g.truncated} were not walked "
            "(%config TorchMagics.autograd_max_nodes = N raises the cap)."
        )
    if g.stale:
        out.extend(f"In-place change after saving: {s}" for s in g.stale)
    return out


# -- rich -------------------------------------------------------------------------
def _node_text(g: Graph, nid: int) -> Text:
    n = g.nodes[nid]
    style = {"leaf": "green", "const": "dim", "collapsed": "yellow", "more": "dim"}.get(n.kind, "bold")
    out = txt(n.title, style)
    if n.subtitle:
        out.append("  ")
        out.append(txt(n.subtitle, "dim"))
    if n.grad and n.kind == "leaf":
        out.append("  .grad=")
        out.append(txt(n.grad, "cyan"))
    if n.group and n.kind == "op":
        out.append(txt(f"  [{n.group}]", "dim"))
    return out


def graph_tree(g: Graph, max_lines: int = TREE_LINES, max_depth: int = 12) -> Tree:
    """The graph as a tree from the outputs up to the leaves; shared nodes appear once.

    Beyond ``max_depth`` levels, a node's inputs are listed at the same
    indentation (marked ``↑``) so deep chains stay readable in a terminal.
    """
    ins = g.inputs()
    root = Tree(Text("backward graph (output → leaves)", style="bold"))
    shown: set[int] = set()
    lines = 0
    stack: list[tuple[Tree, int, int, bool]] = [(root, r, 1, False) for r in reversed(g.roots)]
    while stack:
        parent, nid, depth, flat = stack.pop()
        if lines >= max_lines:
            parent.add(Text(f"… {len(g.nodes) - len(shown)} more nodes not listed", style="dim"))
            break
        lines += 1
        mark = txt("↑ ", "dim") if flat else txt("")
        if nid in shown:
            parent.add(join(mark, txt("↑ "), _node_text(g, nid), txt("  (shown above)", "dim")))
            continue
        shown.add(nid)
        branch = parent.add(join(mark, _node_text(g, nid)))
        deep = depth >= max_depth
        for child in reversed(ins[nid]):
            stack.append((parent if deep else branch, child, depth + (0 if deep else 1), deep))
    return root


def _call_rich(call: BackwardCall) -> Any:
    head = join(
        txt(f"#{call.index} {call.kind} on ", "bold"), txt(call.root, "bold cyan"),
        txt(f" {fmt_shape(call.root_shape)} {call.root_dtype}"),
        txt(f"  line {call.line}: ", "dim"), txt(call.source, "dim"),
    )
    meta = txt(f"gradient: {call.gradient}" + (" · retain_graph=True" if call.retain_graph else ""), "dim")
    items: list[Any] = [head, meta]
    if call.error:
        items.append(txt(f"raised: {call.error}", "red"))
    if call.leaves:
        t = Table(show_edge=False, pad_edge=False)
        for col in ("leaf", "shape", ".grad before", ".grad after", "added", ""):
            t.add_column(col)
        leaves, hidden = _leaves_to_show(call)
        for leaf in leaves:
            t.add_row(
                txt(leaf.name), txt(f"{fmt_shape(leaf.shape)} {leaf.dtype}"),
                txt(leaf.before.text), txt(leaf.after.text), txt(leaf.added),
                txt("⚠ accumulated", "yellow") if leaf.accumulated else txt("ok", "green"),
            )
        items.append(t)
        if hidden:
            items.append(txt(hidden, "dim"))
    if call.results:
        t = Table(show_edge=False, pad_edge=False)
        t.add_column("input")
        t.add_column("gradient returned")
        for name, value in call.results:
            t.add_row(txt(name), txt(value))
        items.append(t)
    return Group(*items)


def _jacobian_rich(jac: Jacobian) -> Any:
    items: list[Any] = [join(txt("Jacobian of ", "bold"), txt(jac.output, "bold cyan"),
                             txt(f" {fmt_shape(jac.output_shape)}"))]
    if jac.note:
        items.append(txt(jac.note, "dim"))
    if jac.matrix:
        t = Table(show_edge=False, pad_edge=False)
        t.add_column("J")
        for c in jac.columns:
            t.add_column(txt(c))
        for r, row in zip(jac.rows, jac.matrix):
            t.add_row(txt(r), *(txt(fmt_number(v)) for v in row))
        t.add_row(txt("v·J", "bold"), *(txt(fmt_number(v), "bold") for v in jac.vj))
        if jac.backward:
            t.add_row(txt("backward()"), *(txt(fmt_number(v)) for v in jac.backward))
        items.append(t)
        items.append(txt("v = " + ", ".join(fmt_number(x) for x in jac.v), "dim"))
        if jac.matches is not None:
            items.append(txt("v·J matches what backward() computed", "green") if jac.matches
                         else txt("v·J differs from what backward() computed", "red"))
    return Group(*items)


def to_rich(report: AutogradReport) -> Any:
    items: list[Any] = [join(txt(report.title, "bold"), txt("  " + " · ".join(_summary(report)), "dim"))]
    if report.explanation is not None:
        ex = report.explanation
        items += [txt(ex.error, "bold red"), txt(ex.plain), join(txt("Fix: ", "bold"), txt(ex.fix))]
    for note in report.notes:
        style = "yellow" if note.kind != "info" else "dim"
        times = f" (×{note.count} in this cell)" if note.count > 1 else ""
        items.append(txt(("⚠ " if note.kind != "info" else "") + note.message + times, style))
        if note.fix:
            items.append(join(txt("  Fix: ", "bold"), txt(note.fix)))
    if report.nothing:
        items.append(txt(report.nothing, "dim"))
    g = report.graph
    if g is not None and g.nodes:
        for m in _graph_messages(g):
            items.append(txt(m, "dim"))
        items.append(graph_tree(g))
    if report.leaves:
        t = Table(show_edge=False, pad_edge=False)
        t.add_column("leaf")
        t.add_column(".grad")
        for name, grad in report.leaves:
            t.add_row(txt(name), txt(grad))
        items.append(t)
    for call in report.calls[:FULL_CALLS]:
        items.append(_call_rich(call))
    for call in report.calls[FULL_CALLS:]:
        flag = "  ⚠ accumulated" if any(leaf.accumulated for leaf in call.leaves) else ""
        items.append(join(txt(f"#{call.index} {call.kind} on "), txt(call.root),
                          txt(f"  line {call.line}", "dim"), txt(flag, "yellow")))
    if report.untracked:
        t = Table(title="not tracked by autograd", show_edge=False, pad_edge=False)
        for col in ("line", "code", "why", "from", "result"):
            t.add_column(col)
        for u in report.untracked:
            t.add_row(txt(u.line), txt(u.source), txt(_untracked_word(u.kind)),
                      txt(", ".join(u.inputs)), txt(u.output))
        items.append(t)
    for jac in report.jacobians:
        items.append(_jacobian_rich(jac))
    return Group(*items)
