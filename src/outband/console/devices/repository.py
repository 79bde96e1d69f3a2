"""Device queries, all taking the caller's session (open it with ``db.read()`` / ``db.write()`` and keep the
transaction short: no device I/O inside it).

The pieces an operation needs: :func:`resolve_selection` turns a :class:`~outband.console.schemas.Selection`
into device ids, :func:`load_targets` turns ids into :class:`~.connect.DeviceTarget` (passwords decrypted),
:func:`record_state` writes back what an exchange learnt about a device.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from ..db.base import utcnow
from ..db.models import ERROR_LENGTH, CiraPresence, Device, Group, Tag, Transport, device_tags
from ..metrics import power_state_name
from ..schemas import CiraPublic, DeviceCreate, DevicePublic, DeviceState, Selection
from ..secrets import SecretBox
from .connect import DeviceFacts, DeviceTarget

CHUNK: Final = 5_000
"""Ids per IN (...) list: SQLite allows 32,766 bound parameters per statement."""

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SelectionError(ValueError):
    """A selection names devices, tags or groups that do not exist."""


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    tag: str | None = None
    group: str | None = None
    reachable: bool | None = None
    power_state: int | None = None
    search: str | None = None
    """Substring of the name or host."""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Select[Any], filters: DeviceFilter) -> Select[Any]:
    if filters.tag is not None:
        query = query.where(Device.tags.any(Tag.name == filters.tag))
    if filters.group is not None:
        query = query.where(Device.group.has(Group.name == filters.group))
    if filters.reachable is not None:
        query = query.where(Device.reachable.is_(filters.reachable))
    if filters.power_state is not None:
        query = query.where(Device.power_state == filters.power_state)
    if filters.search:
        pattern = f"%{_escape_like(filters.search.lower())}%"
        query = query.where(or_(func.lower(Device.name).like(pattern, escape="\\"),
                                func.lower(Device.host).like(pattern, escape="\\")))
    return query


_SHOWN: Final = (selectinload(Device.tags), selectinload(Device.group), selectinload(Device.presence))
"""What :func:`public` reads besides the device's own columns."""


async def find_devices(session: AsyncSession, filters: DeviceFilter, *, limit: int, offset: int
                       ) -> tuple[list[Device], int]:
    total = (await session.execute(_filtered(select(func.count(Device.id)), filters))).scalar_one()
    rows = (await session.execute(
        _filtered(select(Device), filters).options(*_SHOWN)
        .order_by(Device.name).limit(limit).offset(offset)
    )).scalars().all()
    return list(rows), int(total)


async def get_device(session: AsyncSession, device_id: int) -> Device | None:
    return (await session.execute(
        select(Device).where(Device.id == device_id).options(*_SHOWN)
    )).scalar_one_or_none()


async def name_taken(session: AsyncSession, name: str, *, except_id: int | None = None) -> bool:
    query = select(Device.id).where(Device.name == name)
    if except_id is not None:
        query = query.where(Device.id != except_id)
    return (await session.execute(query.limit(1))).first() is not None


def public(device: Device, *, new: bool = False) -> DevicePublic:
    """The API view of a device (loaded with :data:`_SHOWN`, or ``new``: just added, never dialled in)."""
    return DevicePublic(
        id=device.id, name=device.name, host=device.host, username=device.username, use_tls=device.use_tls,
        http_port=device.http_port, tls_port=device.tls_port, fingerprint=device.fingerprint,
        transport=device.transport, cira=_cira_view(device, None if new else device.presence),
        group=device.group.name if device.group else None,
        tags=[tag.name for tag in device.tags], created_at=device.created_at, updated_at=device.updated_at,
        state=DeviceState(
            reachable=device.reachable, power_state=device.power_state, power=power_state_name(device.power_state),
            amt_version=device.amt_version, provisioning_mode=device.provisioning_mode, uuid=device.uuid,
            last_seen_at=device.last_seen_at, last_checked_at=device.last_checked_at, last_error=device.last_error,
        ),
    )


def _cira_view(device: Device, presence: CiraPresence | None) -> CiraPublic | None:
    if device.transport is not Transport.CIRA:
        return None
    own = device.cira_username is not None and device.cira_password_enc is not None
    seen = presence or CiraPresence(online=False)
    return CiraPublic(login="own" if own else "shared", cira_username=device.cira_username if own else None,
                      online=bool(seen.online), mps_node=seen.mps_node, peer=seen.peer,
                      connected_since=seen.connected_since, last_keepalive=seen.last_keepalive,
                      disconnected_at=seen.disconnected_at, last_error=seen.last_error)


# ------------------------------------------------------------------------------------------ tags, groups

async def ensure_tags(session: AsyncSession, names: Iterable[str]) -> list[Tag]:
    """The tags named, created when missing."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    existing = {t.name: t for t in (await session.execute(select(Tag).where(Tag.name.in_(wanted)))).scalars()}
    for name in wanted:
        if name not in existing:
            existing[name] = Tag(name=name)
            session.add(existing[name])
    await session.flush()
    return [existing[name] for name in wanted]


async def ensure_group(session: AsyncSession, name: str | None) -> Group | None:
    if name is None:
        return None
    group = (await session.execute(select(Group).where(Group.name == name))).scalar_one_or_none()
    if group is None:
        group = Group(name=name)
        session.add(group)
        await session.flush()
    return group


async def change_tags(session: AsyncSession, device_ids: Sequence[int], add: Sequence[str], remove: Sequence[str]
                      ) -> None:
    """Add and remove tags on many devices with set-based statements (no per-device round trips)."""
    add_tags = await ensure_tags(session, add)
    if remove:
        remove_ids = select(Tag.id).where(Tag.name.in_(list(remove))).scalar_subquery()
        for part in chunks(device_ids):
            await session.execute(device_tags.delete().where(device_tags.c.device_id.in_(part),
                                                             device_tags.c.tag_id.in_(remove_ids)))
    for tag in add_tags:
        for part in chunks(device_ids):
            have = set((await session.execute(select(device_tags.c.device_id).where(
                device_tags.c.tag_id == tag.id, device_tags.c.device_id.in_(part)))).scalars())
            rows = [{"device_id": i, "tag_id": tag.id} for i in part if i not in have]
            if rows:
                await session.execute(device_tags.insert(), rows)
    if add or remove:
        for part in chunks(device_ids):
            await session.execute(update(Device).where(Device.id.in_(part)).values(updated_at=utcnow()))


# ------------------------------------------------------------------------------------------ add, state

def new_device(spec: DeviceCreate, box: SecretBox, tags: list[Tag], group: Group | None) -> Device:
    return Device(
        name=spec.name, host=spec.address, username=spec.username, password_enc=box.encrypt(spec.password),
        use_tls=spec.use_tls, http_port=spec.http_port, tls_port=spec.tls_port, fingerprint=spec.fingerprint,
        transport=spec.transport, uuid=str(spec.uuid) if spec.uuid is not None else None,
        cira_username=spec.cira_username,
        cira_password_enc=box.encrypt(spec.cira_password) if spec.cira_password is not None else None,
        tags=tags, group=group,
    )


def target_of(spec: DeviceCreate) -> DeviceTarget:
    """The connection a not-yet-stored device would use."""
    return DeviceTarget(None, spec.name, spec.address, spec.username, spec.password, spec.http_port, spec.tls_port,
                        spec.use_tls, spec.fingerprint, spec.transport)


async def cira_uuid_taken(session: AsyncSession, device_uuid: str, *, except_id: int | None = None) -> bool:
    """Whether another CIRA device has this UUID (the MPS would not know which of them dialled in)."""
    query = select(Device.id).where(Device.uuid == device_uuid, Device.transport == Transport.CIRA)
    if except_id is not None:
        query = query.where(Device.id != except_id)
    return (await session.execute(query.limit(1))).first() is not None


def apply_facts(device: Device, facts: DeviceFacts, now: dt.datetime | None = None) -> None:
    """A successful check: the device is reachable and this is what it said."""
    now = now or utcnow()
    device.reachable = True
    device.last_seen_at = device.last_checked_at = now
    device.last_error = None
    device.amt_version = facts.amt_version or device.amt_version
    device.provisioning_mode = facts.provisioning_mode or device.provisioning_mode
    device.uuid = facts.uuid or device.uuid
    if facts.power_state is not None:
        device.power_state = facts.power_state


async def record_state(session: AsyncSession, device_id: int, *, reachable: bool, error: str | None = None,
                       now: dt.datetime | None = None, **state: Any) -> None:
    """Write back the outcome of talking to a device: reachability, the time, and any of ``power_state``,
    ``amt_version``, ``provisioning_mode``, ``uuid`` learnt on the way."""
    allowed = {"power_state", "amt_version", "provisioning_mode", "uuid"}
    unknown = set(state) - allowed
    if unknown:
        raise TypeError(f"not device state: {sorted(unknown)}")
    now = now or utcnow()
    values: dict[str, Any] = {"reachable": reachable, "last_checked_at": now, **state}
    if reachable:
        values.update(last_seen_at=now, last_error=None)
    else:
        values["last_error"] = (error or "unreachable")[:ERROR_LENGTH]
    await session.execute(update(Device).where(Device.id == device_id).values(**values)
                          .execution_options(synchronize_session=False))


# ------------------------------------------------------------------------------------------ selections

async def resolve_selection(session: AsyncSession, selection: Selection) -> list[int]:
    """Ids (ascending) of every device the selection names; :class:`SelectionError` for names, ids, tags or
    groups that do not exist (a typo must not silently shrink a fleet operation)."""
    if selection.all:
        return list((await session.execute(select(Device.id).order_by(Device.id))).scalars())
    found: set[int] = set()
    missing: list[str] = []
    if selection.devices:
        wanted_ids = sorted(set(selection.devices))
        for part in chunks(wanted_ids):
            found.update((await session.execute(select(Device.id).where(Device.id.in_(part)))).scalars())
        missing += [f"device {i}" for i in wanted_ids if i not in found]
    if selection.names:
        wanted_names = sorted(set(selection.names))
        known: dict[str, int] = {}
        for names_part in chunks(wanted_names):
            query = select(Device.name, Device.id).where(Device.name.in_(names_part))
            known.update((name, device_id) for name, device_id in await session.execute(query))
        found.update(known.values())
        missing += [f"device {n!r}" for n in wanted_names if n not in known]
    if selection.tags:
        tag_names = sorted(set(selection.tags))
        existing = set((await session.execute(select(Tag.name).where(Tag.name.in_(tag_names)))).scalars())
        missing += [f"tag {n!r}" for n in tag_names if n not in existing]
        found.update((await session.execute(
            select(device_tags.c.device_id).join(Tag, Tag.id == device_tags.c.tag_id).where(Tag.name.in_(tag_names))
        )).scalars())
    if selection.groups:
        group_names = sorted(set(selection.groups))
        existing = set((await session.execute(select(Group.name).where(Group.name.in_(group_names)))).scalars())
        missing += [f"group {n!r}" for n in group_names if n not in existing]
        found.update((await session.execute(
            select(Device.id).join(Group, Group.id == Device.group_id).where(Group.name.in_(group_names))
        )).scalars())
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise SelectionError(f"no such {shown}")
    return sorted(found)


async def load_targets(session: AsyncSession, box: SecretBox, device_ids: Sequence[int]) -> list[DeviceTarget]:
    """Connection details of the devices, passwords decrypted (in memory only; keep them out of logs).
    Ids of devices deleted meanwhile are skipped."""
    targets: list[DeviceTarget] = []
    for part in chunks(sorted(set(device_ids))):
        for device in (await session.execute(select(Device).where(Device.id.in_(part)).order_by(Device.id))).scalars():
            targets.append(DeviceTarget.of(device, box.decrypt(device.password_enc)))
    return targets

