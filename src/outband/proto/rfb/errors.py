"""The one error of the RFB codecs."""

from __future__ import annotations


class RfbProtocolError(ValueError):
    """The peer broke RFB (bad value, length over a cap, message out of place): the session must close."""
