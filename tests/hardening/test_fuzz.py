"""Bad input: property-based fuzzing of every magic's line and of %tensorinfo expressions.

The property: whatever the line, the magic either works or raises
``UsageError`` (one clear line) — never another exception from inside
torchmagic, and never a ``torchmagic: ... failed`` line (which would be an
internal bug the guard caught).  Odd tensors (0-d, empty, huge on ``meta``,
sparse, complex, bool, quantized, nested, Parameter, a ``__torch_function__``
subclass, ...) are inspected by every line magic and traced by every cell
magic: the traced cell ends exactly as the bare cell does.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

pytestmark = [
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),  # fuzzed expressions like 1[0]
    pytest.mark.filterwarnings("ignore::UserWarning"),  # beta/deprecated odd tensors
]
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXAMPLES: dict[str, int] = {}  # property -> examples run (docs/reliability.md quotes them)

NAMES = ["x", "model", "t", "arr", "lst", "d", "s", "n", "none", "missing", "model.0", "x.grad",
         "torch", "rep", "_", "Odd", "1", "2.5", "'cpu'", "None"]
DEVICES = ["cpu", "meta", "cuda", "cuda:0", "cuda:99", "mps", "xpu", "cpu:0", "meta:1", "gpu", "CPU",
           "cuda:-1", "cuda:x", "", "cpu,meta", "<b>", "[red]x"]
WEIRD = ["", " ", "-", "--", "---x", "-o", "=", "'", '"', "'''", "(", ")", "[", "]", "{", "}", "\\", "#",
         ";", "$x", "{x}", "!ls", "%tensorinfo", "%%device", "\t", "é", "变量", "\x00", "<script>",
         "a b", "-1", "1e309", "0x10", "lambda: 0", "x if x else x", "*x", "**d", ":", "...", "yield"]
INTS = ["-3", "-1", "0", "1", "2", "3", "x", "1.5", "99999999999999999999999", ""]


def _option(name: str) -> st.SearchStrategy[str]:
    words = st.sampled_from(NAMES + WEIRD)
    flags: dict[str, st.SearchStrategy[str]] = {
        "tensorinfo": st.one_of(
            st.just("--image"), st.just("--deep"), st.just("--source"),
            st.builds(lambda v: f"--max-rows {v}", st.sampled_from(INTS)),
            st.builds(lambda v: f"-o {v}", words), st.builds(lambda v: f"--out={v}", words),
        ),
        "autograd": st.one_of(
            st.just("--jacobian"), st.just("--no-collapse"), st.just("--modules"),
            st.builds(lambda v: f"-o {v}", words),
        ),
        "device": st.one_of(
            st.builds(lambda v: f"-n {v}", st.sampled_from(INTS[:6])),
            st.builds(lambda v: f"-r {v}", st.sampled_from(INTS[:6])),
            st.builds(lambda v: "--compare " + " ".join(v), st.lists(st.sampled_from(DEVICES), max_size=3)),
            st.builds(lambda v: f"--fallback {v}", st.sampled_from(DEVICES)),
            st.builds(lambda v: f"-o {v}", words),
        ),
    }
    return flags[name]


def _line(name: str, targets: list[str]) -> st.SearchStrategy[str]:
    piece = st.one_of(_option(name), st.sampled_from(targets), st.sampled_from(WEIRD),
                      st.text(max_size=8))
    return st.lists(piece, max_size=5).map(" ".join)


def _no_internal_failure(out: str) -> None:
    assert "torchmagic:" not in out or "failed" not in out, out
    assert "Traceback" not in out, out


_SAVED: dict[str, Any] = {}


def _call(ip: Any, capture: Any, fn: Any) -> None:
    ip.user_ns.update(_SAVED)  # `-o x` in an earlier example may have replaced x
    with capture() as cap:
        try:
            fn()
        except UsageError as exc:
            msg = str(exc).strip()
            assert msg and "\n" not in msg, msg  # one clear line
    _no_internal_failure(cap.stdout + cap.stderr)


@pytest.fixture
def fip(hip: Any) -> Any:
    hip.run_cell(
        "import numpy as np\narr = np.ones((2, 3))\nlst = [1, 2]\nd = {'w': x}\ns = 'text'\nn = 3\nnone = None\n"
        "class Odd(torch.Tensor):\n    pass\n"
    )
    _SAVED.clear()
    _SAVED.update({k: hip.user_ns[k] for k in ("x", "model", "t", "arr", "lst", "d", "s", "n", "none", "Odd")})
    return hip


LINE_TARGETS = {"tensorinfo": [*NAMES, "x[0]", "x + 1", "model[0].weight", "d['w']", "x.T"],
                "autograd": [*NAMES, "t", "t * 2", "x.sum()"], "device": NAMES + DEVICES}


@pytest.mark.parametrize("magic", ["tensorinfo", "autograd", "device"])
def test_fuzz_line_magic_arguments(fip: Any, capture: Any, magic: str) -> None:
    @FUZZ
    @given(line=_line(magic, LINE_TARGETS[magic]))
    def check(line: str) -> None:
        EXAMPLES[f"%{magic} line"] = EXAMPLES.get(f"%{magic} line", 0) + 1
        _call(fip, capture, lambda: fip.run_line_magic(magic, line))

    check()


CELL_TARGETS = {"tensorinfo": [], "autograd": [], "device": DEVICES}


@pytest.mark.parametrize("magic", ["tensorinfo", "autograd", "device"])
def test_fuzz_cell_magic_arguments(fip: Any, capture: Any, magic: str) -> None:
    """The cell is fine; only the line is fuzzed: the cell runs as usual or the line is refused."""

    @FUZZ
    @given(line=_line(magic, CELL_TARGETS[magic] or WEIRD))
    def check(line: str) -> None:
        EXAMPLES[f"%%{magic} line"] = EXAMPLES.get(f"%%{magic} line", 0) + 1
        fip.user_ns.pop("fuzzed", None)
        _call(fip, capture, lambda: fip.run_cell_magic(magic, line, "fuzzed = (x * 2).sum()\nfuzzed"))

    check()


def _expr() -> st.SearchStrategy[str]:
    base = st.sampled_from(["x", "t", "model", "arr", "lst", "d", "s", "n", "none", "missing", "1", "2.5",
                            "True", "'a'", "[1, 2]", "(x, x)", "torch"])
    suffix = st.sampled_from(["", ".T", ".grad", ".shape", ".sum()", "[0]", "[:, None]", "[..., 0]",
                              "[1:]", ".float()", ".detach()", ".view(-1)", ".reshape(3, 1)", "[99]",
                              ".to('meta')", ".weight", "[0].weight", ".nope", "()", "['w']", ".numpy()",
                              ".int()", ".bool()", ".unsqueeze(0)", "[None]"])
    atom = st.builds(lambda b, s1, s2: b + s1 + s2, base, suffix, suffix)
    op = st.sampled_from([" + ", " * ", " @ ", " / ", " == ", " and ", " if x else ", ", ", " ", "[", "("])
    return st.one_of(
        st.builds(lambda a, o, b: a + o + b, atom, op, atom),
        atom,
        st.text(alphabet=st.sampled_from(list("xt()[]:.,+-*/@ '\"0123456789_\\{}$!%#;<>")), max_size=12),
    )


def test_fuzz_tensorinfo_expressions(fip: Any, capture: Any) -> None:
    @settings(FUZZ, max_examples=400)
    @given(expr=_expr())
    def check(expr: str) -> None:
        EXAMPLES["%tensorinfo expression"] = EXAMPLES.get("%tensorinfo expression", 0) + 1
        _call(fip, capture, lambda: fip.run_line_magic("tensorinfo", expr))

    check()


# -- odd tensors -----------------------------------------------------------------
ODD_SETUP = """
import torch
class Logged(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})
class BadRepr(torch.Tensor):
    def __repr__(self, *, tensor_contents=None):
        raise ValueError('repr refused')
odd = {
    '0-d': torch.tensor(3.5),
    '0-d int': torch.tensor(7),
    'empty': torch.empty(0, 3),
    'empty 0-size middle': torch.ones(2, 0, 4),
    'huge meta': torch.empty(2**40, 2**20, device='meta'),
    'meta': torch.ones(3, 4, device='meta'),
    'sparse coo': torch.eye(3).to_sparse(),
    'sparse csr': torch.eye(3).to_sparse_csr(),
    'complex': torch.randn(3, dtype=torch.complex64),
    'bool': torch.tensor([True, False]),
    'uint8': torch.arange(6, dtype=torch.uint8).reshape(2, 3),
    'bfloat16': torch.ones(3, dtype=torch.bfloat16),
    'float16 inf nan': torch.tensor([1.0, float('inf'), float('nan')], dtype=torch.float16),
    'quantized': torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.quint8),
    'nested': torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
    'parameter': torch.nn.Parameter(torch.ones(2, 2)),
    'subclass': torch.ones(3).as_subclass(Logged),
    'bad repr': torch.ones(3).as_subclass(BadRepr),
    'expanded': torch.ones(3, 1).expand(3, 1000),
    'non-contiguous': torch.ones(4, 6).t(),
    'inference': None,
    'non-leaf': torch.ones(2, requires_grad=True) * 2,
    'float8': torch.ones(2).to(torch.float8_e4m3fn) if hasattr(torch, 'float8_e4m3fn') else torch.ones(2),
}
with torch.inference_mode():
    odd['inference'] = torch.ones(3)
"""
ODD = ["0-d", "0-d int", "empty", "empty 0-size middle", "huge meta", "meta", "sparse coo", "sparse csr",
       "complex", "bool", "uint8", "bfloat16", "float16 inf nan", "quantized", "nested", "parameter",
       "subclass", "bad repr", "expanded", "non-contiguous", "inference", "non-leaf", "float8"]
TRACED_BODY = "r1 = v * 2\nr2 = v.sum()\nr3 = v.reshape(-1)\nr4 = v[0]\nr5 = v.to('meta')\n"
TRACED_MAGICS = ["%%tensorinfo", "%%tensorinfo --deep", "%%autograd", "%%device cpu", "%%device meta"]


@pytest.fixture
def oip(hip: Any) -> Any:
    assert hip.run_cell(ODD_SETUP).success
    _SAVED.clear()
    return hip


@pytest.mark.parametrize("kind", ODD)
def test_odd_tensor_inspected(oip: Any, capture: Any, kind: str) -> None:
    oip.user_ns["v"] = oip.user_ns["odd"][kind]
    for magic, line in (("tensorinfo", "v"), ("tensorinfo", "--image v"), ("tensorinfo", ""),
                        ("autograd", "v"), ("device", "v"), ("device", "{'a': v}")):
        _call(oip, capture, lambda magic=magic, line=line: oip.run_line_magic(magic, line))


@pytest.mark.parametrize("kind", ODD)
def test_odd_tensor_traced(oip: Any, capture: Any, kind: str) -> None:
    """Each line of the body runs alone (so later lines run even if one fails) under every magic."""
    oip.user_ns["v"] = oip.user_ns["odd"][kind]
    for line in TRACED_BODY.splitlines():
        with capture():
            bare = oip.run_cell(line).error_in_exec
        for magic in TRACED_MAGICS:
            with capture() as cap:
                got = oip.run_cell(f"{magic}\n{line}").error_in_exec
            out = cap.stdout + cap.stderr
            assert type(got) is type(bare), (magic, line, bare, got, out[-2000:])
            _no_internal_failure(out.split("Traceback")[0] if bare is not None else out)


def test_zz_examples_were_run() -> None:
    """Guard against a vacuous fuzz (e.g. every example filtered): each property ran."""
    print(EXAMPLES)
    if EXAMPLES:  # empty when run alone with -k
        assert all(n >= 30 for n in EXAMPLES.values()), EXAMPLES
