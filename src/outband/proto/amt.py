"""AMT vocabulary both sides share: realms, access permissions, PT_STATUS codes.

Facts from AMT-PROTOCOLS.md §2.9 and §3.3 (realm numbers from GWM authorization/decoder.go and MPS constants).
"""

from __future__ import annotations

import enum


class Realm(enum.IntEnum):
    """Access realms of AMT's ACL: a user may call a service only with the service's realm."""

    REDIRECTION = 2
    PT_ADMINISTRATION = 3
    HARDWARE_ASSET = 4
    REMOTE_CONTROL = 5
    STORAGE = 6
    EVENT_MANAGER = 7
    STORAGE_ADMIN = 8
    AGENT_PRESENCE_LOCAL = 9
    AGENT_PRESENCE_REMOTE = 10
    CIRCUIT_BREAKER = 11
    NETWORK_TIME = 12
    GENERAL_INFO = 13
    FIRMWARE_UPDATE = 14
    EIT = 15
    LOCAL_UN = 16
    ENDPOINT_ACCESS_CONTROL = 17
    ENDPOINT_ACCESS_CONTROL_ADMIN = 18
    EVENT_LOG_READER = 19
    AUDIT_LOG = 20
    ACL = 21
    LOCAL_SYSTEM = 24


class AccessPermission(enum.IntEnum):
    LOCAL_ONLY = 0
    NETWORK_ONLY = 1
    LOCAL_AND_NETWORK = 2


class PTStatus(enum.IntEnum):
    """AMT status codes, returned directly by AMT_/IPS_ methods and as ``AMT-STATUS n`` in fault details."""

    SUCCESS = 0x0
    INTERNAL_ERROR = 0x1
    NOT_READY = 0x2
    INVALID_PT_MODE = 0x3
    INVALID_MESSAGE_LENGTH = 0x4
    INVALID_NAME = 0xC
    NOT_PERMITTED = 0x10
    AUTHENTICATION_FAILED = 0x19
    REQUEST_UNEXPECTED = 0x1E
    INVALID_PROVISIONING_STATE = 0x20
    MAX_LIMIT_REACHED = 0x17
    INVALID_INDEX = 0x23
    INVALID_PARAMETER = 0x24
    FLASH_WRITE_LIMIT_EXCEEDED = 0x26
    CONNECTION_FAILED = 0x2D
    DISABLED_BY_POLICY = 0x400
    INVALID_HANDLE = 0x805
    INVALID_PASSWORD = 0x806
    INVALID_REALM = 0x807
    STORAGE_ACL_ENTRY_IN_USE = 0x808
    DUPLICATE = 0x80A
    EVENTLOG_FROZEN = 0x80B
    INVALID_KEY = 0x80E
    INVALID_CERT = 0x80F
    UNSUPPORTED = 0x812
    NOT_FOUND = 0x814
    INVALID_CREDENTIALS = 0x815
    BLOCKING_COMPONENT = 0x81C
    USER_CONSENT_REQUIRED = 0x821
