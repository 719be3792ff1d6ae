"""Source-level facts about an op: its sub-expression, operand texts, assignment.

The ``executing`` package maps a frame's current bytecode instruction to the
AST node running it, so ``y = (x + 1) @ w.T`` gives ``x + 1`` for the add and
``(x + 1) @ w.T`` for the matmul.  From that node we read the text of each
operand (``w.T``), and the name an op's result is assigned to (``y``).  Only
called once per distinct op site, never per execution.
"""

from __future__ import annotations

import ast
import linecache
from itertools import islice
from types import CodeType, FrameType

__all__ = ["Site", "site_of", "expression_at", "node_at"]

_MAX_TEXT = 80


class Site:
    """What the source says about one instruction (all strings)."""

    __slots__ = ("expression", "arg_texts", "elts", "target", "top", "call_names")

    def __init__(self, expression: str = "", arg_texts: list[str] | None = None,
                 target: str = "", top: bool = False) -> None:
        self.expression = expression
        self.arg_texts = arg_texts or []
        self.elts: dict[int, list[str]] = {}  # arg index -> texts of a literal list/tuple's items
        self.call_names: list[str] = []  # plain-name arguments of the library call (``lin(x)`` -> x)
        self.target = target  # the name the result is assigned to, if the op is the whole RHS
        self.top = top  # the op is the outermost expression of its statement

    def copy(self) -> Site:
        """A copy whose lists can be replaced without touching this one."""
        site = Site(self.expression, self.arg_texts, self.target, self.top)
        site.elts, site.call_names = self.elts, self.call_names
        return site


_LINES: dict[str, list[str]] = {}


def _segment(source: str, node: ast.AST) -> str | None:
    """``ast.get_source_segment`` without re-splitting the source on every call."""
    lines = _LINES.get(source)
    if lines is None:
        if len(_LINES) > 8:
            _LINES.clear()
        lines = _LINES[source] = source.splitlines(keepends=True)
    try:
        l0, l1 = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
        c0, c1 = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
    except AttributeError:
        return None
    if l1 is None or c1 is None or l1 >= len(lines):
        return None
    if l0 == l1:
        return lines[l0].encode()[c0:c1].decode(errors="replace")
    first = lines[l0].encode()[c0:].decode(errors="replace")
    last = lines[l1].encode()[:c1].decode(errors="replace")
    return first + "".join(lines[l0 + 1 : l1]) + last


def _text(source: str, node: ast.AST | None) -> str:
    if node is None:
        return ""
    seg = _segment(source, node)
    if seg is None:
        try:
            seg = ast.unparse(node)
        except Exception:  # noqa: BLE001 - source lookup is best effort: no text, no label
            return ""
    seg = " ".join(seg.split())
    return seg if len(seg) <= _MAX_TEXT else seg[: _MAX_TEXT - 1] + "…"


def _arg_nodes(node: ast.AST, op: str, nargs: int) -> list[ast.AST | None]:
    """AST nodes of the op's positional args, in the order torch received them."""
    if isinstance(node, ast.BinOp):
        pair: list[ast.AST | None] = [node.left, node.right]
        return pair[::-1] if op.startswith("__r") and op != "__repr__" else pair
    if isinstance(node, ast.AugAssign):
        return [node.target, node.value]
    if isinstance(node, ast.Compare) and len(node.comparators) == 1:
        return [node.left, node.comparators[0]]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Subscript):
        parent = getattr(node, "parent", None)
        if isinstance(parent, ast.Assign) and node in parent.targets:
            return [node.value, node.slice, parent.value]
        return [node.value, node.slice]
    if isinstance(node, ast.Attribute):
        return [node.value]
    if isinstance(node, ast.Call):
        args: list[ast.AST | None] = list(node.args)
        if any(isinstance(a, ast.Starred) for a in args):
            return []
        if isinstance(node.func, ast.Attribute) and len(args) + 1 == nargs:
            return [node.func.value, *args]  # method call: self comes first
        return args
    return []


class _Spans:
    """One cell's AST, indexed by source span (parents linked), parsed once per cell source."""

    __slots__ = ("source", "nodes")

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[tuple[int, int, int, int], ast.AST] = {}
        for node in ast.walk(ast.parse(source)):
            for child in ast.iter_child_nodes(node):
                child.parent = node  # type: ignore[attr-defined]
            if isinstance(node, (ast.expr, ast.stmt)):
                # breadth-first: a nested node with the same span (``Expr(Call)``) replaces its parent
                self.nodes[(node.lineno, node.end_lineno or 0, node.col_offset, node.end_col_offset or 0)] = node


_SPANS: dict[str, _Spans] = {}


def _node_at(frame: FrameType) -> tuple[ast.AST, str] | None:
    """The AST node of ``frame``'s current instruction, from ``co_positions`` (Python ≥ 3.11).

    The instruction's source span names the node exactly; ``executing`` does
    the same with more machinery (and per code object), so this is the fast
    path and ``executing`` the fallback where a span matches no node.
    """
    return node_at(frame.f_code, frame.f_lasti)


def expression_at(code: CodeType, lasti: int) -> str:
    """The source text of the expression instruction ``lasti`` of ``code`` runs (``''`` if unknown).

    For reports made after the frame is gone (the NaN watch keeps code and
    instruction offset, not frames).
    """
    found = node_at(code, lasti)
    return _text(found[1], found[0]) if found is not None else ""


def node_at(code: CodeType, lasti: int) -> tuple[ast.AST, str] | None:
    """:func:`_node_at` for a code object and instruction offset."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return None
    pos = next(islice(positions(), lasti // 2, None), None)
    if pos is None or None in pos:
        return None
    filename = code.co_filename
    source = "".join(linecache.getlines(filename))
    spans = _SPANS.get(filename)
    if spans is None or spans.source != source:
        if len(_SPANS) > 8:
            _SPANS.clear()
        try:
            spans = _SPANS[filename] = _Spans(source)
        except (SyntaxError, ValueError):
            return None
    node = spans.nodes.get(pos)  # type: ignore[arg-type]
    return (node, source) if node is not None else None


def _executing_node(frame: FrameType) -> tuple[ast.AST, str] | None:
    try:
        import executing

        ex = executing.Source.executing(frame)
        node = ex.node
        source = ex.source.text
    except Exception:  # noqa: BLE001 - source lookup is best effort: no text, no label
        return None
    return (node, source) if node is not None else None


def site_of(frame: FrameType, op: str, nargs: int, direct: bool) -> Site:
    """Read the sub-expression at ``frame``'s current instruction.

    ``direct`` is False when the op ran inside a library call made on this
    line (``lin(x)``): the expression is then the call, and operand texts are
    not mapped (the call's arguments are not the op's).
    """
    found = _node_at(frame) or _executing_node(frame)
    if found is None:
        return Site()
    node, source = found
    site = Site(expression=_text(source, node))
    parent = getattr(node, "parent", None)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        site.target = ", ".join(_text(source, t) for t in targets)
    elif isinstance(node, ast.AugAssign):
        site.target = _text(source, node.target)
    site.top = isinstance(parent, ast.stmt) or isinstance(node, ast.stmt)
    if not direct and isinstance(node, ast.Call):
        site.call_names = [a.id for a in node.args if isinstance(a, ast.Name)]
    if direct:
        nodes = _arg_nodes(node, op, nargs)
        site.arg_texts = [_text(source, n) for n in nodes]
        for i, n in enumerate(nodes):
            if isinstance(n, (ast.List, ast.Tuple)):
                site.elts[i] = [_text(source, e) for e in n.elts]
    return site
