"""Objects parsed from an envelope type their fields on first read; nothing else about them may change.

* Everything that refuses a document still refuses it at parse time, including inside fields whose decoding
  is deferred (EPR-valued fields) and inside embedded instances.
* An object written back without ever being read gives the same bytes as one whose every field was read.
* Reading, setting, deleting and comparing behave as on an object built through the API.
* Two inputs that used to escape as exceptions other than DecodeError (a long run of digits in an integer
  field, a namespace URI libxml2's canonicaliser refuses inside an unmodelled field) are kept as values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from outband.proto.cim.model import CimObject, XmlFragment
from outband.proto.wsman import DecodeError, EndpointReference, Envelope, ObjectAndEPR, PullResponse, parse_envelope
from outband.proto.wsman.namespaces import ADDRESSING, SOAP, WSMAN

GENERAL = "http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings"
ASSOCIATION = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ServiceAvailableToElement"
ALARM = "http://intel.com/wbem/wscim/1/ips-schema/1/IPS_AlarmClockOccurrence"


def envelope(body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:b="{ADDRESSING}" xmlns:c="{WSMAN}"><s:Header></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def general(fields: str) -> bytes:
    return envelope(f'<h:AMT_GeneralSettings xmlns:h="{GENERAL}">{fields}</h:AMT_GeneralSettings>')


def association(field: str) -> bytes:
    element = "h:CIM_ServiceAvailableToElement"
    return envelope(f'<{element} xmlns:h="{ASSOCIATION}">{field}</{element}>')


EPR_CONTENT = (
    "<b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address>"
    "<b:ReferenceParameters><c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
    'CIM_PowerManagementService</c:ResourceURI><c:SelectorSet><c:Selector Name="Name">Power</c:Selector>'
    "</c:SelectorSet></b:ReferenceParameters>"
)


def body_of(data: bytes) -> CimObject:
    body = parse_envelope(data).body
    assert isinstance(body, CimObject)
    return body


# ---------------------------------------------------------------------------------- refused at parse time


@pytest.mark.parametrize(
    "data",
    [
        general("stray<h:HostName>h</h:HostName>"),
        general("<h:HostName>h</h:HostName>stray"),
        association(f"<h:ServiceProvided>stray{EPR_CONTENT}</h:ServiceProvided>"),
        association(f"<h:ServiceProvided>{EPR_CONTENT}stray</h:ServiceProvided>"),
        envelope(
            f'<h:AddAlarm_INPUT xmlns:h="http://intel.com/wbem/wscim/1/ips-schema/1/IPS_AlarmClockService">'
            f'<h:AlarmTemplate><q:IPS_AlarmClockOccurrence xmlns:q="{ALARM}">'
            "<q:ElementName>a</q:ElementName>stray</q:IPS_AlarmClockOccurrence></h:AlarmTemplate></h:AddAlarm_INPUT>"
        ),
        envelope(
            f'<g:PullResponse xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><g:Items>'
            f'<h:AMT_GeneralSettings xmlns:h="{GENERAL}"><h:HostName>h</h:HostName></h:AMT_GeneralSettings>stray'
            "</g:Items></g:PullResponse>"
        ),
    ],
    ids=["before-fields", "after-a-field", "before-an-epr", "inside-an-epr-field", "inside-embedded", "items"],
)
def test_text_mixed_with_fields_is_refused_at_parse_time(data: bytes) -> None:
    with pytest.raises(DecodeError, match="text mixed"):
        parse_envelope(data)


# ------------------------------------------------------------------------------------- same as eager


def _objects(env: Envelope) -> list[CimObject]:
    body = env.body
    if isinstance(body, CimObject):
        return [body]
    if isinstance(body, PullResponse):
        return [item.obj if isinstance(item, ObjectAndEPR) else item
                for item in body.items if not isinstance(item, EndpointReference)]
    return []


def test_unread_objects_write_the_same_bytes_as_read_ones(conformance_dir: Path) -> None:
    """The writer copies never-read leaf text straight through; that must equal typing it and writing back."""
    compared = 0
    for path in sorted(conformance_dir.rglob("*.xml")):
        data = path.read_bytes()
        unread, read = parse_envelope(data), parse_envelope(data)
        for obj in _objects(read):
            obj.properties()
        compared += len(_objects(read))
        assert unread.to_bytes() == read.to_bytes(), path.name
    assert compared > 100  # the captures hold many instances; an empty walk would prove nothing


@pytest.mark.parametrize(
    "fields",
    [
        '<h:HostName xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" a="1" xsi:nil="1"></h:HostName>',
        "<h:DHCPv6ConfigurationTimeout> 30</h:DHCPv6ConfigurationTimeout>"
        "<h:AMTNetworkEnabled>True</h:AMTNetworkEnabled>",
        "<h:DHCPv6ConfigurationTimeout>030</h:DHCPv6ConfigurationTimeout><h:PowerSource>-1</h:PowerSource>",
        "<h:HostName>a &amp; b&#13;</h:HostName><h:Unknown>x</h:Unknown><other>y</other>",
    ],
    ids=["nil", "non-canonical", "out-of-range", "escapes-and-unknowns"],
)
def test_odd_leaves_write_the_same_bytes_read_or_not(fields: str) -> None:
    data = general(fields)
    unread, read = parse_envelope(data), parse_envelope(data)
    assert isinstance(read.body, CimObject)
    read.body.properties()
    assert unread.to_bytes() == read.to_bytes()


def test_an_unreadable_epr_field_is_kept_verbatim_when_read() -> None:
    obj = body_of(association(f"<h:ServiceProvided>{EPR_CONTENT}<b:Unexpected>x</b:Unexpected></h:ServiceProvided>"))
    value = obj["ServiceProvided"]
    assert isinstance(value, XmlFragment)
    assert "Unexpected" in value.xml
    assert body_of(Envelope(parse_envelope(association("")).header, obj).to_bytes()) == obj


def test_a_readable_epr_field_is_an_endpoint_reference() -> None:
    value = body_of(association(f"<h:ServiceProvided>{EPR_CONTENT}</h:ServiceProvided>"))["ServiceProvided"]
    assert isinstance(value, EndpointReference)
    assert value.selectors is not None
    assert value.selectors.get("Name") == "Power"


def test_parsed_object_reads_and_compares_like_a_built_one() -> None:
    obj = body_of(general("<h:DHCPv6ConfigurationTimeout>30</h:DHCPv6ConfigurationTimeout><h:HostName>h</h:HostName>"))
    built = CimObject.new("AMT_GeneralSettings", HostName="h", DHCPv6ConfigurationTimeout=30)
    assert obj == built
    assert repr(obj) == repr(built)
    assert list(obj) == ["DHCPv6ConfigurationTimeout", "HostName"]


def test_changes_before_the_first_read_are_kept() -> None:
    obj = body_of(general("<h:HostName>h</h:HostName><h:DomainName>d</h:DomainName>"))
    obj["HostName"] = "changed"
    del obj["DomainName"]
    assert obj.properties() == {"HostName": "changed"}
    again = body_of(general("<h:HostName>h</h:HostName>"))
    again.fields = []
    assert "HostName" not in again
    assert b"HostName" not in Envelope(parse_envelope(general("")).header, again).to_bytes()


# ------------------------------------------------------------------------------ kept instead of raising


def test_a_long_run_of_digits_in_an_integer_field_stays_text() -> None:
    """Python refuses int() on more than 4300 digits; the value is not a uint anyway, so it stays text."""
    digits = "1" * 5000
    obj = body_of(general(f"<h:DHCPv6ConfigurationTimeout>{digits}</h:DHCPv6ConfigurationTimeout>"))
    assert obj["DHCPv6ConfigurationTimeout"] == digits


def test_a_namespace_the_canonicaliser_refuses_is_kept_in_a_fragment() -> None:
    data = general('<h:DomainName><r:Part xmlns:r="relative" r:a="1">x<r:Inner></r:Inner>y</r:Part></h:DomainName>')
    obj = body_of(data)
    value = obj["DomainName"]
    assert isinstance(value, XmlFragment)
    reread = body_of(parse_envelope(data).to_bytes())
    assert reread == obj
