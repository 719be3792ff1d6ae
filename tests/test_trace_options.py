"""trace.options: one name per option, from the trait to the recorder."""

from __future__ import annotations

import dataclasses

from torchmagic.options import Options, options_for
from torchmagic.trace.options import TraceOptions


def test_fields_are_traits_or_line_flags():
    traits = set(Options.class_trait_names(config=True))
    fields = {f.name for f in dataclasses.fields(TraceOptions)}
    assert {f for f in fields if f.startswith("trace_")} <= traits
    assert fields - traits == {"deep", "view"}  # the flags of the %%tensorinfo line


def test_defaults_come_from_the_traits_and_flags_override():
    opts = options_for(TraceOptions)
    assert opts.trace_max_rows == Options().trace_max_rows and not opts.deep and opts.view == "table"
    assert options_for(TraceOptions, deep=True, trace_max_rows=5).trace_max_rows == 5
