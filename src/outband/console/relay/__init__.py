"""Browser redirection: WebSockets that carry a device's serial console (SOL) and screen (KVM) to the web UI.

The console terminates AMT's redirection protocol itself (Digest login, SOL framing, the KVM channel opening)
and relays only the payload: serial bytes for xterm.js, raw RFB for noVNC.  A WebSocket is opened with a
single-use ticket (``POST /api/devices/{id}/redirect-tickets``), an API token, or the session cookie from the
console's own origin; the caller's role must allow ``device.redirect``; the opening and the end of every
session are written to the console's audit trail.

Modules: :mod:`.tickets` (the single-use tickets), :mod:`.access` (who opens a WebSocket), :mod:`.device` (the
device's redirection endpoint and why a session could not start), :mod:`.sol` and :mod:`.kvm` (the relays).
"""
