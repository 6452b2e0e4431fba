"""Decoder option parsing and resolution (`trackpipe.options`)."""

from __future__ import annotations

import pytest

from trackpipe import options


def test_parse_and_errors() -> None:
    assert options.parse_env("jt808.model=JC371, carscop.speed_unit = kmh,") == {
        "jt808.model": "JC371",
        "carscop.speed_unit": "kmh",
    }
    with pytest.raises(options.OptionError, match=r"PROTOCOL\.KEY"):
        options.parse_env("model=JC371")
    with pytest.raises(options.OptionError, match="KEY=VALUE"):
        options.parse(["model"], need_protocol=False)
    assert options.parse(["model=X", "gt06.model=Y"], need_protocol=False) == {"model": "X", "gt06.model": "Y"}


def test_for_protocol_filters_and_overrides() -> None:
    env = {"jt808.model": "JC371", "gt06.model": "VL103", "jt808.timezone": "8"}
    device = {"timezone": "0"}
    got = options.for_protocol("jt808", env, device)
    assert got == {"model": "JC371", "timezone": "0", "jt808.model": "JC371", "jt808.timezone": "0"}
    assert options.for_protocol("h02", env, None) == {}
