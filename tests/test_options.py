"""options: one name and one default per option, from the trait down to the code that reads it."""

from __future__ import annotations

import dataclasses

import pytest

from torchmagic.autograd.options import GraphOptions, WatchOptions
from torchmagic.device.session import DeviceOptions
from torchmagic.distributed.options import PoolOptions, RunOptions
from torchmagic.options import Options, options_for
from torchmagic.tensors.inspect import InfoOptions
from torchmagic.tensors.summary import SummaryOptions
from torchmagic.trace.options import TraceOptions

AREAS = [InfoOptions, SummaryOptions, TraceOptions, WatchOptions, GraphOptions, DeviceOptions, PoolOptions, RunOptions]
# the traits magics.py reads itself (hook switches, the catalog)
READ_BY_MAGICS = {"explain_errors", "language", "tensor_display", "nan_watch"}


def test_every_trait_is_read_under_its_own_name() -> None:
    traits = set(Options.class_trait_names(config=True))
    fields = {f.name for cls in AREAS for f in dataclasses.fields(cls)}
    assert traits - READ_BY_MAGICS <= fields, "a trait no options dataclass reads by its name"


def test_trait_fields_have_no_second_default() -> None:
    traits = set(Options.class_trait_names(config=True))
    for cls in AREAS:
        for f in dataclasses.fields(cls):
            if f.name in traits:
                assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
                    f"{cls.__name__}.{f.name} repeats the trait's default"
                )


def test_every_trait_is_documented() -> None:
    for name, trait in Options.class_traits(config=True).items():
        assert len(trait.help) > 20, name


def test_options_follow_the_live_config(ip, options) -> None:
    from torchmagic.extension import _INSTANCES

    with options(trace_max_rows=7):
        magics = _INSTANCES[id(ip)]
        assert options_for(TraceOptions, magics).trace_max_rows == 7
        assert options_for(TraceOptions).trace_max_rows == Options.class_traits()["trace_max_rows"].default_value
        assert options_for(TraceOptions, magics, trace_max_rows=3, deep=True).trace_max_rows == 3
    assert magics.trace_max_rows == Options.class_traits()["trace_max_rows"].default_value  # reset after


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="no option max_rows"):
        options_for(TraceOptions, max_rows=3)
