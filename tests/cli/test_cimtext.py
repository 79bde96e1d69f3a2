"""Command-line text <-> typed CIM values, through the class catalog."""

from __future__ import annotations

import pytest

from outband.cli.cimtext import (
    CliValueError,
    format_epr,
    format_value,
    parse_assignments,
    parse_epr,
    parse_selectors,
    parse_value,
)
from outband.proto.cim.catalog import require
from outband.proto.cim.model import CimDateTime
from outband.proto.cim.schema import Prop
from outband.proto.wsman import EndpointReference, resource_uri

GENERAL = require("AMT_GeneralSettings")


def power_param(name: str) -> Prop:
    method = require("CIM_PowerManagementService").method("RequestPowerStateChange")
    prop = method.input(name) if method is not None else None
    assert prop is not None
    return prop


@pytest.mark.parametrize(("text", "expected"), [("2", 2), ("on", 2), ("Off - Soft", 8), ("0x0A", 10)])
def test_integers_by_number_or_meaning(text: str, expected: int) -> None:
    assert parse_value(power_param("PowerState"), text) == expected


def test_integer_errors_list_the_meanings() -> None:
    with pytest.raises(CliValueError, match=r"one of .*2 \(On\)"):
        parse_value(power_param("PowerState"), "sideways")
    with pytest.raises(CliValueError, match="out of range"):
        parse_value(power_param("PowerState"), "70000")


def test_booleans_reals_and_binary() -> None:
    shared = GENERAL.prop("SharedFQDN")
    assert parse_value(shared, "true") is True
    assert parse_value(shared, "No") is False
    with pytest.raises(CliValueError, match="boolean"):
        parse_value(shared, "maybe")
    nonce = require("AMT_GeneralSettings").method("AMTAuthenticate").input("MC_Nonce")  # type: ignore[union-attr]
    assert parse_value(nonce, "AAEC") == b"\x00\x01\x02"
    with pytest.raises(CliValueError, match="base64"):
        parse_value(nonce, "not base64!")


def test_datetimes_and_intervals() -> None:
    timeout = power_param("TimeoutPeriod")
    assert parse_value(timeout, "PT30S") == CimDateTime("Interval", "PT30S")
    assert parse_value(timeout, "2024-05-01T12:00:00Z") == CimDateTime("Datetime", "2024-05-01T12:00:00Z")
    with pytest.raises(CliValueError, match="duration"):
        parse_value(timeout, "P30X")


def test_references_round_trip_through_text() -> None:
    text = "CIM_ComputerSystem?CreationClassName=CIM_ComputerSystem&Name=Managed%26System%3D1"
    epr = parse_epr(text)
    assert epr == EndpointReference.to(resource_uri("CIM_ComputerSystem"),
                                       {"CreationClassName": "CIM_ComputerSystem", "Name": "Managed&System=1"})
    assert format_epr(epr) == text
    assert parse_value(power_param("ManagedElement"), text) == epr
    assert parse_value(None, text) == epr  # untyped parameters are recognised by their form
    assert parse_value(None, "Intel(r) AMT?") == "Intel(r) AMT?"


def test_selectors_and_assignments() -> None:
    selectors = parse_selectors(["InstanceID=Intel(r) AMT: General Settings", "Ref=CIM_Chassis?Tag=1"])
    assert selectors.get("InstanceID") == "Intel(r) AMT: General Settings"
    assert isinstance(selectors.get("Ref"), EndpointReference)
    values = parse_assignments(["HostName=a=b", "DDNSTTL=60", "Extra=x", "Extra=y"], GENERAL.prop)
    assert values == {"HostName": "a=b", "DDNSTTL": 60, "Extra": ["x", "y"]}
    with pytest.raises(CliValueError, match="NAME=VALUE"):
        parse_assignments(["HostName"], GENERAL.prop)


def test_format_shows_meanings() -> None:
    state = power_param("PowerState")
    assert format_value(state, 2) == "2 (On)"
    assert format_value(state, 99) == "99"
    assert format_value(None, True) == "true"
    assert format_value(None, None) == "(nil)"
