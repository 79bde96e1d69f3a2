"""The MPS's settings, from ``OUTBAND_MPS_*`` environment variables (like the job services' own)::

    OUTBAND_MPS_LISTEN          HOST:PORT devices dial (127.0.0.1:4433; ``off``: no MPS)
    OUTBAND_MPS_CERT_FILE       the MPS certificate (PEM; with OUTBAND_MPS_KEY_FILE), else one generated in
    OUTBAND_MPS_KEY_FILE        <data dir>/mps on first start and kept
    OUTBAND_MPS_NAMES           extra host names/addresses for the generated certificate (comma-separated; the
                                first is its CN, which AMT compares with the CN configured by AddMpServer)
    OUTBAND_MPS_USERNAME        the shared CIRA login of devices without credentials of their own
    OUTBAND_MPS_PASSWORD
    OUTBAND_MPS_AUTO_REGISTER   add devices that log in with the shared login but are not known (false)
    OUTBAND_MPS_AMT_USERNAME    the AMT account stored for a device added that way (admin) ...
    OUTBAND_MPS_AMT_PASSWORD    ... and its password
    OUTBAND_MPS_NODE            this MPS node's name in the presence table (the host name)
    OUTBAND_MPS_KEEPALIVE       seconds between the devices' keepalives (30, as both MPS implementations ask)
    OUTBAND_MPS_IDLE_TIMEOUT    seconds of silence after which a tunnel is dropped (3 keepalives)
    OUTBAND_MPS_RELAY_LISTEN    HOST:PORT where this node relays for the other console processes sharing its
                                database (off: one console process; see console.mps.nodes)
    OUTBAND_MPS_RELAY_ADDRESS   HOST:PORT the other nodes dial to reach that listener (default: the listen
                                address, which must then name one host)
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..config import parse_listen
from ..db.models import HOST_LENGTH, LABEL_LENGTH, USERNAME_LENGTH

DEFAULT_MPS_LISTEN: Final = "127.0.0.1:4433"
OFF: Final = "off"


def names_one_host(host: str) -> bool:
    """A listen host that names one host (not empty, not 0.0.0.0 or ::): it can go into a certificate, and others
    can dial it."""
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return bool(host)


class MpsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTBAND_", env_ignore_empty=True, extra="ignore")

    mps_listen: str = Field(default=DEFAULT_MPS_LISTEN, description="HOST:PORT of the MPS, or 'off'.")
    mps_cert_file: Path | None = None
    mps_key_file: Path | None = None
    mps_names: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mps_username: str | None = Field(default=None, min_length=1, max_length=USERNAME_LENGTH)
    mps_password: SecretStr | None = None
    mps_auto_register: bool = False
    mps_amt_username: str = Field(default="admin", min_length=1, max_length=32)
    mps_amt_password: SecretStr | None = None
    mps_node: str = Field(default_factory=lambda: socket.gethostname()[:LABEL_LENGTH] or "mps",
                          min_length=1, max_length=LABEL_LENGTH)
    mps_keepalive: int = Field(default=30, ge=1, le=3600)
    mps_idle_timeout: float | None = Field(default=None, gt=0, le=4 * 3600)
    mps_relay_listen: str = Field(default=OFF, description="HOST:PORT of the node relay, or 'off'.")
    mps_relay_address: str | None = Field(default=None, max_length=HOST_LENGTH)

    @field_validator("mps_listen", "mps_relay_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if value.strip().lower() == OFF:
            return OFF
        parse_listen(value)
        return value

    @field_validator("mps_names", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _check_pairs(self) -> MpsSettings:
        if (self.mps_cert_file is None) != (self.mps_key_file is None):
            raise ValueError("OUTBAND_MPS_CERT_FILE and OUTBAND_MPS_KEY_FILE go together")
        if (self.mps_username is None) != (self.mps_password is None):
            raise ValueError("OUTBAND_MPS_USERNAME and OUTBAND_MPS_PASSWORD go together")
        if self.mps_auto_register and (self.mps_username is None or self.mps_amt_password is None):
            raise ValueError("OUTBAND_MPS_AUTO_REGISTER needs the shared login (OUTBAND_MPS_USERNAME/PASSWORD) and "
                             "the AMT password to store for the devices it adds (OUTBAND_MPS_AMT_PASSWORD)")
        if self.relay_enabled:
            host, _ = self.relay_listen_address
            if self.mps_relay_address is None and not names_one_host(host):
                raise ValueError("OUTBAND_MPS_RELAY_LISTEN listens on every address: say which one the other nodes "
                                 "dial with OUTBAND_MPS_RELAY_ADDRESS")
            if self.mps_relay_address is not None:
                parse_listen(self.mps_relay_address)
        return self

    @property
    def relay_enabled(self) -> bool:
        return self.mps_relay_listen != OFF

    @property
    def relay_listen_address(self) -> tuple[str, int]:
        return parse_listen(self.mps_relay_listen)

    @property
    def enabled(self) -> bool:
        return self.mps_listen != OFF

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.mps_listen)

    @property
    def listen_given(self) -> bool:
        """The address was chosen (argument or environment), not left to the default."""
        return "mps_listen" in self.model_fields_set

    @property
    def idle_timeout(self) -> float:
        return self.mps_idle_timeout or 3.0 * self.mps_keepalive

    @property
    def shared_login(self) -> tuple[str, str] | None:
        if self.mps_username is None or self.mps_password is None:
            return None
        return self.mps_username, self.mps_password.get_secret_value()
