"""i18n: every sentence has a Chinese translation with the same placeholders; the language switches live."""

from __future__ import annotations

import ast
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from torchmagic import i18n

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"tr": None, "trn": (1, 2), "N_": None}  # what `make messages` extracts (Makefile)
CATALOGS = sorted((ROOT / "torchmagic" / "locale").glob("*/LC_MESSAGES/torchmagic.po"))


def _messages() -> dict[str | tuple[str, ...], list[str]]:
    """Every message the code passes to tr()/trn()/N_(), with where it is."""
    from babel.messages.extract import extract_from_dir

    found: dict[str | tuple[str, ...], list[str]] = {}
    method_map = [("**.py", "python")]
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT / "torchmagic"), method_map, keywords=KEYWORDS
    ):
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _catalog(po: Path) -> Any:
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        return read_po(f)


def test_there_is_a_chinese_catalog() -> None:
    assert [p.parts[-3] for p in CATALOGS] == ["zh_CN"]


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-3])
def test_every_message_is_translated_with_the_same_placeholders(po: Path) -> None:
    catalog = _catalog(po)
    problems: list[str] = []
    for message, where in _messages().items():
        entry = catalog.get(message if isinstance(message, str) else message[0])
        place = where[0]
        if entry is None or not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
            problems.append(f"{place}: not translated: {message!r}")
            continue
        sources = [message] if isinstance(message, str) else list(message)
        targets = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        wanted = set().union(*(_fields(s) for s in sources))
        for target in targets:
            got = _fields(target)
            if got - wanted or (isinstance(message, str) and got != wanted):
                problems.append(f"{place}: placeholders {sorted(got)} vs {sorted(wanted)} in {message!r}")
    assert not problems, "\n".join(problems[:40]) + (f"\n… {len(problems) - 40} more" if len(problems) > 40 else "")


def test_catalog_has_no_stale_entries() -> None:
    """Entries whose sentence left the code are dropped (`make messages`), so translators see only live text."""
    live = {m if isinstance(m, str) else m[0] for m in _messages()}
    for po in CATALOGS:
        stale = [m.id for m in _catalog(po) if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in live]
        assert not stale, f"{po}: {stale[:5]}"


def _keyword_calls() -> list[tuple[str, ast.Call, bool]]:
    """Every tr()/trn()/N_() call in the package, where it is, and whether it sits inside an f-string."""
    calls: list[tuple[str, ast.Call, bool]] = []
    for path in sorted((ROOT / "torchmagic").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        in_fstring = {
            id(inner) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYWORDS:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                calls.append((where, node, id(node) in in_fstring))
    return calls


def test_the_code_finds_its_messages_in_the_catalog() -> None:
    """Read from the code itself, not from what Babel extracted: what extraction misses fails here.

    pybabel skips a tr("…") written inside an f-string and a message that is not
    one literal (an f-string, ``"a" + b``); at run time such a sentence would
    stay English.  A call whose argument is a name (``tr(LEGEND)``,
    ``tr(collector.what)``) translates a string marked with N_() where it is
    defined, which this test checks at that N_() call.
    """
    problems: list[str] = []
    catalogs = [_catalog(po) for po in CATALOGS]
    calls = _keyword_calls()
    assert len(calls) > 300, len(calls)  # the walk really reads the package
    for where, call, in_fstring in calls:
        name = call.func.id  # type: ignore[attr-defined]
        wanted = 2 if name == "trn" else 1
        args = call.args[:wanted]
        if len(args) < wanted:
            problems.append(f"{where}: {name}() without its message")
            continue
        if any(isinstance(a, (ast.JoinedStr, ast.BinOp)) for a in args):
            problems.append(f"{where}: {name}() of a built string: pass one literal with named placeholders")
            continue
        if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
            continue  # a name: the N_() that defines it is checked
        texts = [a.value for a in args]  # type: ignore[attr-defined]
        for catalog in catalogs:
            entry = catalog.get(texts[0])
            if entry is None or not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
                why = " (inside an f-string, which pybabel never extracts)" if in_fstring else ""
                problems.append(f"{where}: {texts[0]!r} is not translated in {catalog.locale}{why}")
            elif name == "trn" and tuple(entry.id) != tuple(texts):
                problems.append(f"{where}: the catalog's plural of {texts[0]!r} is {entry.id!r}")
    assert not problems, "\n".join(problems[:40]) + (f"\n… {len(problems) - 40} more" if len(problems) > 40 else "")


def test_no_message_sits_inside_an_f_string() -> None:
    """Even one the catalog has (through another call of the same sentence): ``make messages`` would drop it
    from the catalog the day that other call goes, and this sentence would turn English unnoticed."""
    hidden = [where for where, call, in_fstring in _keyword_calls()
              if in_fstring and call.args and isinstance(call.args[0], ast.Constant)]  # tr(NAME): N_() marks it
    assert not hidden, hidden


def test_every_collector_names_itself_with_a_marked_message() -> None:
    """The runner says "starting {what}" with ``tr(collector.what)``: a ``what`` not marked with N_() stays English."""
    plain: list[str] = []
    for path in sorted((ROOT / "torchmagic").rglob("*.py")):
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(cls, ast.ClassDef):
                continue
            for stmt in cls.body:
                target = stmt.targets[0] if isinstance(stmt, ast.Assign) else getattr(stmt, "target", None)
                value = getattr(stmt, "value", None)
                if isinstance(target, ast.Name) and target.id == "what" and isinstance(value, ast.Constant):
                    plain.append(f"{path.relative_to(ROOT)}:{stmt.lineno} {cls.name}.what = {value.value!r}")
    assert not plain, "\n".join(plain)


@pytest.mark.parametrize(
    ("setting", "env", "expected"),
    [
        ("auto", {"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ("auto", {"LANGUAGE": "fr:zh", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ("auto", {"LC_ALL": "C.UTF-8"}, "en"),
        ("auto", {}, "en"),
        ("zh-Hans-CN", {}, "zh_CN"),
        ("zh_TW", {}, "en"),  # no Traditional Chinese catalog: not Simplified by guess
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
        ("xx", {}, "en"),
    ],
)
def test_resolve(setting: str, env: dict[str, str], expected: str) -> None:
    assert i18n.resolve(setting, env) == expected


def test_a_missing_compiled_catalog_falls_back_to_english(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "zh_CN" / "LC_MESSAGES").mkdir(parents=True)  # a .po checkout never compiled
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    try:
        assert i18n.set_language("zh_CN") == "en"
        assert "no compiled zh_CN messages" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        i18n.set_language("en")


def test_switching_language_changes_the_next_message() -> None:
    message = "torchmagic: {what} failed ({error}); the cell's own result is unaffected. Please report this at the torchmagic issue tracker."
    try:
        assert i18n.set_language("zh_CN") == "zh_CN"
        zh = i18n.tr(message, what="x", error="E")
        assert "失败" in zh and "x" in zh and "E" in zh
        i18n.set_language("en")
        assert i18n.tr(message, what="x", error="E").startswith("torchmagic: x failed (E)")
    finally:
        i18n.set_language("en")


def test_the_option_switches_the_language_live(ip: Any, capsys: Any, options: Any) -> None:
    from torchmagic.core.guard import internal_failure

    with options(language="zh_CN"):
        assert i18n.language() == "zh_CN"
        internal_failure("x", ValueError("v"))
        assert "失败" in capsys.readouterr().err
    assert i18n.language() == "en"  # the trait's default ("auto") under the test's English locale


def test_english_costs_nothing_at_import() -> None:
    code = (
        "import sys, torchmagic, torchmagic.i18n as i\n"
        "print(i._catalog is None, 'gettext' in sys.modules and i.language() == 'en')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["True", "True"]
