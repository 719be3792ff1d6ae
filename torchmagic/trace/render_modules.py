"""Draw the module tree of a trace: the summary table first, then each call with the ops inside it.

The summary (module, type, input → output shapes, parameter elements, time
share) is what people open torchinfo for, but read from the real call.  The
tree follows the order the data flowed: each module call is a
``<details>`` (open for the first two levels, no script needed) or an
indented block in the terminal, holding its ops and the calls it made.  A
folded block (``layers.0 … layers.11 ×12``) shows its first instance and
lists what differs per instance behind its own ``<details>``.
"""

from __future__ import annotations

from rich.cells import cell_len

from torchmagic.core.html import esc
from torchmagic.core.lines import Line
from torchmagic.i18n import N_, tr, trn
from torchmagic.trace.render_ops import HEADERS, fit, headers, op_lines, op_trs
from torchmagic.trace.report import ModuleCall, OpRow, TraceReport

__all__ = ["summary_html", "summary_lines", "module_tree_html", "module_lines", "title"]

_OPEN_DEPTH = 2  # HTML: calls nested deeper than this start closed
# the summary table's columns (terminal order; HTML puts "in → out" third), translated where drawn
_SUMMARY_HEADS = (N_("module"), N_("type"), N_("params"), N_("time"), N_("in → out"), "")


def title(m: ModuleCall, parent: str = "") -> str:
    """``layers.0 … layers.11 ×12`` for a folded run, else the path (relative to ``parent``)."""
    name = m.path[len(parent) + 1:] if parent and m.path.startswith(parent + ".") else m.path
    if m.repeat > 1:
        last = m.instances[-1]
        last = last[len(parent) + 1:] if parent and last.startswith(parent + ".") else last
        return f"{name} … {last} ×{m.repeat}"
    return name


def _folded_stats(m: ModuleCall, report: TraceReport) -> tuple[int, float]:
    """Parameters and seconds of a call, summed over the instances it stands for."""
    if m.repeat == 1:
        return m.params, m.seconds
    run = [x for x in report.modules if x.parent == m.parent and x.path in m.instances]
    return sum(x.params for x in run), sum(x.seconds for x in run)


def _io(m: ModuleCall) -> str:
    """``(8, 3, 32, 32) → (8, 10)``; ``→ ✗ raised`` for a call that ended in an exception."""
    outputs = m.outputs or tr("✗ raised")  # outside the f-string: pybabel extracts it only there
    return f"{m.inputs} → {outputs}"


def _share(seconds: float, total: float) -> str:
    return f"{100 * seconds / total:.0f}%" if total > 0 else ""


def _calls(m: ModuleCall) -> str:
    calls = trn("×{n} call", "×{n} calls", m.calls) if m.calls > 1 else ""
    if m.shape_sets > 1:
        shapes = trn("{n} input shape", "{n} input shapes", m.shape_sets)
        return tr("{calls}, {shapes}", calls=calls, shapes=shapes) if calls else shapes
    return calls


def _visible(report: TraceReport) -> list[tuple[ModuleCall, int, str]]:
    """Calls in tree order (depth first, folded instances left out): (call, depth, parent path)."""
    out: list[tuple[ModuleCall, int, str]] = []
    todo = [(i, 0, "") for kind, i in reversed(report.order) if kind == "module"]
    while todo:
        i, depth, parent = todo.pop()
        m = report.modules[i]
        if m.folded:
            continue
        out.append((m, depth, parent))
        todo.extend((j, depth + 1, m.path) for kind, j in reversed(m.items) if kind == "module")
    return out


def summary_lines(report: TraceReport) -> list[Line]:
    """The module table as padded terminal lines (shapes last: they are the widest column)."""
    rows = []
    for m, depth, parent in _visible(report):
        params, seconds = _folded_stats(m, report)
        rows.append(("  " * depth + title(m, parent), m.type, f"{params:,}", _share(seconds, report.seconds),
                     _io(m), _calls(m)))
    heads = tuple(tr(h) if h else "" for h in _SUMMARY_HEADS)
    widths = [min(max(cell_len(r[k]) for r in [heads, *rows]), cap) for k, cap in enumerate((30, 24, 12, 4))]
    styles = ("bold", "", "", "magenta", "cyan", "dim")
    out = [Line(("  ".join(_cell(h, w, k) for k, (h, w) in enumerate(zip(heads, widths))) + "  " + heads[4], "dim"))]
    for r in rows:
        line = Line()
        for k, w in enumerate(widths):
            line.add(_cell(r[k], w, k), styles[k])
            line.add("  ")
        line.add(r[4], styles[4])
        if r[5]:
            line.add("  ")
            line.add(r[5], styles[5])
        out.append(line)
    return out


def _cell(text: str, width: int, k: int) -> str:
    return fit(text, width, right=k in (2, 3))


def summary_html(report: TraceReport) -> str:
    """The module table: one row per call (a folded run is one row), indented by depth."""
    body = []
    for m, depth, parent in _visible(report):
        params, seconds = _folded_stats(m, report)
        pad = f' style="padding-left: {8 + 16 * depth}px"' if depth else ""
        body.append(
            f"<tr><td{pad}><code>{esc(title(m, parent))}</code></td><td>{esc(m.type)}</td>"
            f"<td>{esc(_io(m))}</td><td style=\"text-align:right\">{params:,}</td>"
            f"<td style=\"text-align:right\">{esc(_share(seconds, report.seconds))}</td>"
            f'<td class="tm-muted">{esc(_calls(m))}</td></tr>'
        )
    head = headers((_SUMMARY_HEADS[0], _SUMMARY_HEADS[1], _SUMMARY_HEADS[4], _SUMMARY_HEADS[2], _SUMMARY_HEADS[3], ""))
    return (f'<table class="tm-table tm-modules"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _heading(m: ModuleCall) -> str:
    extra = [_io(m)] if m.inputs or m.outputs else []
    if m.opaque:
        extra.append(tr("eval mode: run untraced, as bare (PyTorch's fast path)"))
    calls = _calls(m)
    if calls:
        extra.append(calls)
    return " · ".join(extra)


def _single_op(m: ModuleCall) -> bool:
    """A call that ran exactly one op and nothing else (``conv1`` › ``conv2d``): drawn as one row."""
    return m.repeat == 1 and len(m.items) == 1 and m.items[0][0] == "op"


def module_tree_html(report: TraceReport, m: ModuleCall, depth: int, parent: str = "") -> str:
    """One call as a ``<details>`` holding its ops (table rows) and the calls it made, in order.

    Ops and single-op calls that follow each other share one table: such a
    call is one row, its name in the first column.
    """
    parts = []
    trs: list[str] = []

    def flush() -> None:
        if trs:
            head = headers(("", *HEADERS[1:]))
            parts.append(f'<table class="tm-table tm-trace"><thead><tr>{head}</tr></thead>'
                         f"<tbody>{''.join(trs)}</tbody></table>")
            trs.clear()

    for kind, i in m.items:
        if kind == "op":
            trs.extend(op_trs(report.rows[i], "", m.path))
            continue
        child = report.modules[i]
        if child.folded:
            continue
        if _single_op(child):
            lead = f"<code>{esc(title(child, m.path))}</code> <span class=\"tm-muted\">{esc(child.type)}</span>"
            trs.extend(op_trs(report.rows[child.items[0][1]], lead, child.path))
            continue
        flush()
        parts.append(module_tree_html(report, child, depth + 1, m.path))
    flush()
    if m.repeat > 1:
        diffs = "".join(f"<li>{esc(d)}</li>" for d in m.differences)
        each = trn("each of the {n} instance", "each of the {n} instances", m.repeat)
        parts.append(f"<details><summary>{esc(each)}</summary><ul>{diffs}</ul></details>")
    summary = (f"<code>{esc(title(m, parent))}</code> <b>{esc(m.type)}</b> "
               f'<span class="tm-muted">{esc(_heading(m))}</span>')
    attr = " open" if depth < _OPEN_DEPTH else ""
    return f'<details class="tm-module"{attr}><summary>{summary}</summary>{"".join(parts)}</details>'


def module_lines(report: TraceReport, m: ModuleCall, indent: str, parent: str = "") -> list[Line]:
    """One call as an indented block: its heading, then its ops and the calls it made, in order.

    A call that ran one op is one line: its name and type, then the op.
    """
    head = Line(indent, (title(m, parent), "bold"), "  ", (m.type, "cyan"), "  ")
    if _single_op(m) and parent:
        lines = op_lines([report.rows[m.items[0][1]]], report.default_dtype, "", m.path)
        return [head.add(lines[0]), *(Line(indent, line) for line in lines[1:])]
    out = [head.add((_heading(m), "dim"))]
    inner = indent + "  "
    ops: list[OpRow] = []

    def flush() -> None:
        if ops:
            out.extend(op_lines(list(ops), report.default_dtype, inner, m.path))
            ops.clear()

    for kind, i in m.items:
        if kind == "op":
            ops.append(report.rows[i])
            continue
        flush()
        child = report.modules[i]
        if not child.folded:
            out.extend(module_lines(report, child, inner, m.path))
    flush()
    if m.repeat > 1:
        others = [m.differences[k] for k in m.differ]
        same = m.repeat - 1 - len(others)
        if same:
            first = title(m, parent).split(" … ")[0]
            text = tr("ops counted over all {n} instances; {same} of the others take and give the same shapes as "
                      "{first}", n=m.repeat, same=same, first=first)
            out.append(Line(inner, (text, "dim")))
        out.extend(Line(inner, ("≠ ", "yellow"), (d, "dim")) for d in others)
    return out
