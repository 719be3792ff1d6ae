"""trace.render_nan: the NaN line (in a trace and under any cell) and the watch's on/off answer."""

from __future__ import annotations

from torchmagic.trace.report import NanOrigin, NanReport, NanWatchState


def _origin(**kw: object) -> NanOrigin:
    base: dict[str, object] = {"line": 3, "source": "b = torch.log(x)", "expression": "torch.log(x)", "op": "log",
                               "made": "1 NaN and 1 −Inf", "why": "log of a negative number and of 0"}
    base.update(kw)
    return NanOrigin(**base)  # type: ignore[arg-type]


def test_sentence_says_where_what_and_why():
    assert _origin().sentence() == "line 3: torch.log(x) made 1 NaN and 1 −Inf (log of a negative number and of 0)"
    came = _origin(came_in=("x",), why="")
    assert came.sentence().startswith("line 3: torch.log(x) gave 1 NaN and 1 −Inf because its input x held")
    assert "in net.fc (Linear)" in _origin(where="net.fc (Linear)").sentence()


def test_report_text_and_html_escape_user_code():
    rep = NanReport(_origin(expression="f('<script>')"), carried=2)
    text = rep.to_text()
    assert text.splitlines()[0] == "torchmagic NaN watch"
    assert "f('<script>') made" in text and "2 later ops gave non-finite values too" in text
    html = rep.to_html()
    assert "<script>" not in html and "f(&#x27;&lt;script&gt;&#x27;)" in html and 'class="tm-error"' in html


def test_watch_state():
    assert "NaN watch on: from the next cell on" in NanWatchState(True).to_text()
    assert NanWatchState(False).to_text().strip() == "NaN watch off"
    assert "tm-nan" in NanWatchState(True).to_html()
