"""The engine: one AMT-compatible management plane over one platform.

An :class:`Engine` owns the identity (Digest realm, UUID, firmware version), the accounts and the Digest
verifier shared by every listener, the persistent state, the audit and event logs, and the registry of AMT
service handlers.  Listeners (``http.py`` and, later, redirection) hand it authenticated requests; it never
touches sockets itself, which is what lets one process host thousands of engines (fleet mode).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from ..proto.amtlog import AuditApp, AuditRecord, EventRecord, InitiatorType
from ..proto.digest import AuthResult, DigestVerifier, generate_amt_realm, is_amt_realm
from ..proto.wsman import Envelope, Header
from ..proto.wsman import faults as F
from ..proto.wsman.envelope import Body, IdentifyResponse
from ..proto.wsman.messages import MessageIds, reply
from .acl import Account, Accounts
from .dispatch import Enumerations, dispatch
from .platforms.base import Platform, PlatformEvent
from .registry import Service, registry_for
from .state import StateStore

DEFAULT_AMT_VERSION: Final = "16.1.30.2307"
AUDIT_CAPACITY: Final = 1000
EVENT_CAPACITY: Final = 390
EVENTLOG_FROZEN_KEY: Final = "eventlog/frozen"
TIME_OFFSET_KEY: Final = "timesync/offset"
"""Seconds between AMT's clock (set by consoles with SetHighAccuracyTimeSynch) and the host machine's."""
DIGEST_PROFILES: Final = (
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/digest",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/digest",
)


@dataclass(slots=True)
class EngineConfig:
    """Settings that do not change while an engine runs."""

    engine_id: str = "engine"
    amt_version: str = DEFAULT_AMT_VERSION
    hostname: str = ""
    domain: str = ""
    admin_user: str = "admin"
    admin_password: str | None = None
    """Sets (or resets) the admin password at start; None keeps the stored one."""
    services: tuple[Service, ...] = field(default_factory=tuple)


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        platform: Platform,
        store: StateStore,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.platform = platform
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self.realm = self._identity_realm()
        self.accounts = Accounts(store, self.realm)
        if config.admin_password is not None:
            self.accounts.set_admin(config.admin_user, config.admin_password)
        if self.accounts.admin is None:
            raise ValueError("the engine has no admin account yet: give an admin password")
        self.verifier = DigestVerifier(self.accounts.ha1, realm=self.realm, clock=monotonic)
        self.registry = registry_for(config.services)
        self.enumerations = Enumerations(monotonic)
        self.message_ids = MessageIds(int.from_bytes(secrets.token_bytes(2), "big"))
        self.server_header = f"Intel(R) Active Management Technology {config.amt_version}"
        self._event_listeners: list[Callable[[PlatformEvent], None]] = []
        self._login_failure_listeners: list[Callable[[AuthResult, str], None]] = []
        platform.add_listener(self._on_platform_event)
        for hook in self.registry.attach_hooks:
            hook(self)

    # ------------------------------------------------------------------------------------------ identity

    def _identity_realm(self) -> str:
        realm = self.store.get("identity/realm")
        if not isinstance(realm, str) or not is_amt_realm(realm):
            realm = generate_amt_realm()
            self.store.set("identity/realm", realm)
        return realm

    @property
    def amt_version(self) -> str:
        return self.config.amt_version

    @property
    def uuid(self) -> str:
        return self.platform.profile.system_uuid

    # ------------------------------------------------------------------------------------------ WS-MAN

    async def dispatch(self, envelope: Envelope, user: str, peer: str) -> Envelope:
        account = self.accounts.by_name(user)
        if account is None:  # removed between verification and dispatch
            return self.fault_reply(envelope.header, F.AccessDenied())
        return await dispatch(self, envelope, account, peer)

    def identify(self, envelope: Envelope) -> Envelope:
        major_minor = ".".join(self.amt_version.split(".")[:2])
        body = IdentifyResponse(
            product_vendor="Intel Corporation",
            product_version=f"AMT {major_minor}",
            dash_version="1.0.0",
            security_profiles=DIGEST_PROFILES,
        )
        return Envelope(Header(), body)

    def reply(self, request: Header, body: Body) -> Envelope:
        return reply(request, body, self.message_ids.next())

    def fault_reply(self, request: Header, fault: F.WsmanFault) -> Envelope:
        return reply(request, fault, self.message_ids.next())

    def login_failed(self, result: AuthResult, peer: str) -> None:
        """Audit 1605, then tell listeners (the event log adds sensor type 6), as AMT records failed logins."""
        self.audit(AuditApp.SECURITY_ADMIN, 5, user=result.claimed_username or "", address=peer)
        for listener in list(self._login_failure_listeners):
            listener(result, peer)

    def add_login_failure_listener(self, listener: Callable[[AuthResult, str], None]) -> None:
        self._login_failure_listeners.append(listener)

    def now(self) -> float:
        """Now on AMT's own clock (UTC epoch seconds): what logs are stamped with and alarms are due on."""
        return self.clock() + float(self.store.get(TIME_OFFSET_KEY, 0.0))

    # ------------------------------------------------------------------------------------------ logs

    def audit(
        self, app: AuditApp, event: int, *, user: str | None = None, account: Account | None = None,
        address: str = "", extended: bytes = b"", initiator: InitiatorType | None = None,
    ) -> None:
        """Append an audit record: who (a digest user, or local when no user; ``initiator`` says otherwise, e.g.
        a viewer on port 5900), from where, what."""
        name = account.username if account is not None else user
        record = AuditRecord(
            app_id=int(app),
            event_id=event,
            initiator_type=initiator if initiator is not None else (
                InitiatorType.HTTP_DIGEST if name else InitiatorType.LOCAL),
            initiator=(name or "")[:255],
            timestamp=int(self.now()),
            location_type=0 if address else 2,
            address=address[:255],
            extended=extended[:255],
        )
        self.store.append_log("audit", record.encode(), capacity=AUDIT_CAPACITY)

    def log_event(self, record: EventRecord) -> None:
        """Append to the event log, unless a console froze it (AMT_MessageLog.FreezeLog)."""
        if self.store.get(EVENTLOG_FROZEN_KEY):
            return
        self.store.append_log("event", record.encode(), capacity=EVENT_CAPACITY)

    def add_event_listener(self, listener: Callable[[PlatformEvent], None]) -> None:
        self._event_listeners.append(listener)

    def _on_platform_event(self, event: PlatformEvent) -> None:
        for listener in list(self._event_listeners):
            listener(event)

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.platform.start()
        for hook in self.registry.start_hooks:
            hook(self)

    async def stop(self) -> None:
        for hook in self.registry.stop_hooks:
            hook(self)
        await self.platform.stop()


def all_services() -> tuple[Service, ...]:
    """Every AMT service the engine implements (imported lazily: services import the engine's types)."""
    from .services import SERVICES

    return SERVICES


