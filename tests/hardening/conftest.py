"""Fixtures for the hardening suite: a shell with a few user objects defined."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

SETUP = """
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
t = (x * x).sum()
"""


@pytest.fixture
def hip(ip: Any) -> Iterator[Any]:
    """The test shell with ``x`` (a leaf), ``model`` and ``t`` (has a graph) defined."""
    res = ip.run_cell(SETUP)
    assert res.success
    yield ip
