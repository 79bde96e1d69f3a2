"""Devices: list and filter, add (checked by connecting), edit, remove, import from CSV, tag in bulk; tags
and groups."""

from __future__ import annotations

import asyncio
from typing import Annotated, Final

from fastapi import APIRouter, Form, HTTPException, Path, Query, UploadFile, status
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ...db.models import Device, Group, Tag, Transport, device_tags
from ...devices.connect import DeviceCheckError, DeviceFacts, DeviceTarget
from ...devices.importer import CsvFormatError, ParsedRow, parse_devices_csv
from ...devices.repository import (
    DeviceFilter,
    SelectionError,
    apply_facts,
    change_tags,
    chunks,
    cira_uuid_taken,
    ensure_group,
    ensure_tags,
    find_devices,
    get_device,
    name_taken,
    new_device,
    public,
    resolve_selection,
    target_of,
)
from ...runtime import Runtime
from ...schemas import (
    DeviceCreate,
    DevicePage,
    DevicePublic,
    DeviceUpdate,
    GroupCreate,
    GroupPublic,
    GroupUpdate,
    ImportReport,
    ImportRowResult,
    TagChange,
    TagChangeResult,
    TagPublic,
)
from ..common import (
    CONFLICT,
    NOT_FOUND,
    CheckErrorDetail,
    IdPath,
    check_failed,
    conflict,
    not_found,
    selection_failed,
    unprocessable,
)
from ..deps import RequiresDeviceRead, RequiresDeviceWrite, RuntimeDep

router = APIRouter(tags=["devices"])

MAX_IMPORT_BYTES: Final = 20 * 1024 * 1024
IMPORT_BATCH: Final = 500
IMPORT_CHECKS_AT_ONCE: Final = 64
CHECKED: Final = {**CONFLICT, **NOT_FOUND, 422: {"model": CheckErrorDetail,
                                                "description": "The device failed the connection check."}}
Check = Annotated[bool, Query(description="Connect to the device first (identify, TLS pin, authenticate).")]


async def _check(runtime: Runtime, target: DeviceTarget) -> DeviceFacts:
    try:
        return await runtime.connector.check(target)
    except DeviceCheckError as exc:
        raise check_failed(exc) from None


@router.get("/devices")
async def list_devices(
    runtime: RuntimeDep,
    audit: RequiresDeviceRead,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    reachable: bool | None = None,
    power_state: Annotated[int | None, Query(ge=0, le=65535)] = None,
    search: Annotated[str | None, Query(max_length=128, description="Part of the name or address.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DevicePage:
    filters = DeviceFilter(tag=tag, group=group, reachable=reachable, power_state=power_state, search=search)
    async with runtime.db.read() as session:
        devices, total = await find_devices(session, filters, limit=limit, offset=offset)
        return DevicePage(items=[public(d) for d in devices], total=total, limit=limit, offset=offset)


@router.post("/devices", status_code=status.HTTP_201_CREATED, responses=CHECKED)
async def add_device(spec: DeviceCreate, runtime: RuntimeDep, audit: RequiresDeviceWrite,
                     check: Check = True) -> DevicePublic:
    """Add a device.  Unless ``check=false`` the console first connects to it as it will later: Identify,
    the TLS certificate (pinned fingerprint or trusted CA), then an authenticated read; a failure is a 422
    saying which step failed.  A CIRA device is not checked: it cannot have dialled in before it is known (the
    MPS refuses UUIDs it does not know), and its state is read when it does."""
    check = check and spec.transport is not Transport.CIRA
    audit.detail = {"name": spec.name, "host": spec.address, "transport": spec.transport.value, "checked": check}
    async with runtime.db.read() as session:
        await _refuse_taken(session, spec.name, _cira_uuid(spec))
    facts = await _check(runtime, target_of(spec)) if check else None
    async with runtime.db.write() as session:
        await _refuse_taken(session, spec.name, _cira_uuid(spec))
        device = new_device(spec, runtime.box, await ensure_tags(session, spec.tags),
                            await ensure_group(session, spec.group))
        if facts is not None:
            apply_facts(device, facts)
        session.add(device)
        await session.flush()
        audit.devices = [device.id]
        return public(device, new=True)


async def _refuse_taken(session: AsyncSession, name: str | None, cira_uuid: str | None,
                        except_id: int | None = None) -> None:
    taken = await _taken(session, name, cira_uuid, except_id)
    if taken is not None:
        raise conflict(taken)


async def _taken(session: AsyncSession, name: str | None, cira_uuid: str | None,
                 except_id: int | None = None) -> str | None:
    """Why a device may not have this name (or, over CIRA, this UUID): another one has it."""
    if name is not None and await name_taken(session, name, except_id=except_id):
        return f"a device named {name!r} exists"
    if cira_uuid is not None and await cira_uuid_taken(session, cira_uuid, except_id=except_id):
        return f"another CIRA device has the UUID {cira_uuid}"
    return None


def _cira_uuid(spec: DeviceCreate) -> str | None:
    return str(spec.uuid) if spec.transport is Transport.CIRA else None


@router.get("/devices/{device_id}", responses=NOT_FOUND)
async def get_device_route(device_id: IdPath, runtime: RuntimeDep, audit: RequiresDeviceRead) -> DevicePublic:
    async with runtime.db.read() as session:
        device = await get_device(session, device_id)
        if device is None:
            raise not_found("device")
        return public(device)


@router.patch("/devices/{device_id}", responses=CHECKED)
async def edit_device(device_id: IdPath, change: DeviceUpdate, runtime: RuntimeDep, audit: RequiresDeviceWrite,
                      check: Check = True) -> DevicePublic:
    """Change a device; a change to how it is reached (address, ports, TLS, pin, credentials, transport) is
    checked by connecting first, unless ``check=false``.  A CIRA device is checked through its tunnel when it is
    connected now, and otherwise changed unchecked (its next call tells)."""
    audit.devices = [device_id]
    audit.detail = {"changed": sorted(change.model_fields_set)}
    given = change.model_dump(exclude_unset=True)
    for field in ("name", "host", "username", "use_tls", "http_port", "tls_port", "transport", "password"):
        if field in given and given[field] is None:
            raise unprocessable(f"{field} cannot be null")
    async with runtime.db.read() as session:
        device = await get_device(session, device_id)
        if device is None:
            raise not_found("device")
        transport = change.transport or device.transport
        cira_uuid = device.uuid  # as it will be: given (a null clears it), else as stored
        if "uuid" in given:
            cira_uuid = str(change.uuid) if change.uuid is not None else None
        if transport is Transport.CIRA and cira_uuid is None:
            raise unprocessable("a CIRA device needs its uuid: the MPS recognises a device by the UUID it presents")
        await _refuse_taken(session, change.name, cira_uuid if transport is Transport.CIRA else None, device_id)
        target = DeviceTarget(
            device_id, given.get("name", device.name), given.get("host", device.host),
            given.get("username", device.username), given.get("password") or runtime.box.decrypt(device.password_enc),
            given.get("http_port", device.http_port), given.get("tls_port", device.tls_port),
            given.get("use_tls", device.use_tls), given.get("fingerprint", device.fingerprint), transport,
        )
    facts = None
    if check and change.changes_connection and runtime.connector.reachable_now(target):
        facts = await _check(runtime, target)
    async with runtime.db.write() as session:
        device = await get_device(session, device_id)
        if device is None:
            raise not_found("device")
        await _refuse_taken(session, change.name, cira_uuid if transport is Transport.CIRA else None, device_id)
        for field in ("name", "host", "username", "use_tls", "http_port", "tls_port", "fingerprint", "transport"):
            if field in given:
                setattr(device, field, given[field])
        if "uuid" in given:
            device.uuid = cira_uuid
        if "password" in given:
            device.password_enc = runtime.box.encrypt(given["password"])
        if "cira_username" in given:
            device.cira_username = change.cira_username
            device.cira_password_enc = (runtime.box.encrypt(change.cira_password)
                                        if change.cira_password is not None else None)
        if "tags" in given:
            device.tags = await ensure_tags(session, given["tags"] or [])
        if "group" in given:
            device.group = await ensure_group(session, given["group"])
        if facts is not None:
            apply_facts(device, facts)
        await session.flush()
        shown = public(device)
    if change.changes_connection:
        runtime.connector.digests.forget(device_id)
    return shown


@router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_device(device_id: IdPath, runtime: RuntimeDep, audit: RequiresDeviceWrite) -> None:
    audit.devices = [device_id]
    async with runtime.db.write() as session:
        row = (await session.execute(select(Device.name, Device.host).where(Device.id == device_id))).one_or_none()
        if row is None:
            raise not_found("device")
        audit.detail = {"name": row.name, "host": row.host}
        await session.execute(delete(Device).where(Device.id == device_id))
    runtime.connector.digests.forget(device_id)


@router.post("/devices/import", responses={413: {"description": "The file is too large."}})
async def import_devices(
    runtime: RuntimeDep,
    audit: RequiresDeviceWrite,
    file: UploadFile,
    username: Annotated[str | None, Form(max_length=32, description="For rows without a username.")] = None,
    password: Annotated[str | None, Form(max_length=128, description="For rows without a password.",
                                         json_schema_extra={"format": "password"})] = None,
    check: Annotated[bool, Form(description="Connect to each device before adding it.")] = False,
) -> ImportReport:
    """Add devices from a CSV file (columns: name, host, username, password, tls, http_port, tls_port,
    fingerprint, tags, group, and for CIRA devices transport, uuid, cira_username, cira_password).  Each row is
    judged on its own and reported by line number."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMPORT_BYTES} bytes per file")
    try:
        rows = parse_devices_csv(data, username=username, password=password,
                                 max_rows=runtime.settings.import_max_rows)
    except CsvFormatError as exc:
        raise unprocessable(str(exc)) from None
    await _refuse_existing(runtime, rows)
    facts: dict[int, DeviceFacts] = {}
    if check:
        facts = await _check_rows(runtime, rows)
    results = await _store_rows(runtime, rows, facts)
    added = [r.device_id for r in results if r.device_id is not None]
    audit.devices = added
    audit.detail = {"rows": len(results), "added": len(added), "checked": check}
    return ImportReport(added=len(added), failed=len(results) - len(added), rows=results)


async def _refuse_existing(runtime: Runtime, rows: list[ParsedRow]) -> None:
    names = [r.spec.name for r in rows if r.spec is not None]
    taken: set[str] = set()
    async with runtime.db.read() as session:
        for part in chunks(names):
            taken.update((await session.execute(select(Device.name).where(Device.name.in_(part)))).scalars())
    for row in rows:
        if row.spec is not None and row.spec.name in taken:
            row.spec, row.error = None, f"a device named {row.name!r} exists"


async def _check_rows(runtime: Runtime, rows: list[ParsedRow]) -> dict[int, DeviceFacts]:
    gate = asyncio.Semaphore(IMPORT_CHECKS_AT_ONCE)
    facts: dict[int, DeviceFacts] = {}

    async def check(row: ParsedRow) -> None:
        assert row.spec is not None
        async with gate:
            try:
                facts[row.line] = await runtime.connector.check(target_of(row.spec))
            except DeviceCheckError as exc:
                row.spec, row.error = None, f"{exc.reason}: {exc.message}"

    async with asyncio.TaskGroup() as group:
        for row in rows:
            if row.spec is not None and row.spec.transport is not Transport.CIRA:  # CIRA: known when it dials in
                group.create_task(check(row))
    return facts


async def _store_rows(runtime: Runtime, rows: list[ParsedRow], facts: dict[int, DeviceFacts]
                      ) -> list[ImportRowResult]:
    results: dict[int, ImportRowResult] = {
        r.line: ImportRowResult(row=r.line, name=r.name, status="failed", error=r.error) for r in rows if r.spec is None
    }
    pending = [r for r in rows if r.spec is not None]
    for batch in chunks(pending, IMPORT_BATCH):
        async with runtime.db.write() as session:
            stored: list[tuple[ParsedRow, Device]] = []
            for row in batch:
                assert row.spec is not None
                taken = await _taken(session, row.spec.name, _cira_uuid(row.spec))
                if taken is not None:
                    results[row.line] = ImportRowResult(row=row.line, name=row.name, status="failed", error=taken)
                    continue
                device = new_device(row.spec, runtime.box, await ensure_tags(session, row.spec.tags),
                                    await ensure_group(session, row.spec.group))
                if row.line in facts:
                    apply_facts(device, facts[row.line])
                session.add(device)
                stored.append((row, device))
            await session.flush()
            for row, device in stored:
                results[row.line] = ImportRowResult(row=row.line, name=row.name, status="added", device_id=device.id)
    return [results[line] for line in sorted(results)]


@router.post("/devices/tags")
async def tag_devices(change: TagChange, runtime: RuntimeDep, audit: RequiresDeviceWrite) -> TagChangeResult:
    """Add and remove tags on every device a selection names."""
    async with runtime.db.write() as session:
        try:
            ids = await resolve_selection(session, change.target)
        except SelectionError as exc:
            raise selection_failed(exc) from None
        await change_tags(session, ids, change.add, change.remove)
    audit.devices = ids
    audit.detail = {"add": change.add, "remove": change.remove}
    return TagChangeResult(devices=len(ids))


# ------------------------------------------------------------------------------------------ tags

@router.get("/tags", tags=["tags"])
async def list_tags(runtime: RuntimeDep, audit: RequiresDeviceRead) -> list[TagPublic]:
    async with runtime.db.read() as session:
        rows = await session.execute(
            select(Tag.name, func.count(device_tags.c.device_id)).outerjoin(device_tags, device_tags.c.tag_id == Tag.id)
            .group_by(Tag.id, Tag.name).order_by(Tag.name))
        return [TagPublic(name=name, devices=count) for name, count in rows]


@router.delete("/tags/{name}", tags=["tags"], status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_tag(name: Annotated[str, Path(max_length=64)], runtime: RuntimeDep,
                     audit: RequiresDeviceWrite) -> None:
    """Remove a tag from every device and forget it."""
    audit.detail = {"tag": name}
    async with runtime.db.write() as session:
        result = await session.execute(delete(Tag).where(Tag.name == name))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("tag")


# ------------------------------------------------------------------------------------------ groups

async def _group_public(session: AsyncSession, group: Group) -> GroupPublic:
    count = (await session.execute(select(func.count()).select_from(Device).where(Device.group_id == group.id)))
    return GroupPublic(id=group.id, name=group.name, description=group.description, devices=count.scalar_one())


@router.get("/groups", tags=["groups"])
async def list_groups(runtime: RuntimeDep, audit: RequiresDeviceRead) -> list[GroupPublic]:
    async with runtime.db.read() as session:
        rows = await session.execute(
            select(Group, func.count(Device.id)).outerjoin(Device, Device.group_id == Group.id)
            .group_by(Group.id).order_by(Group.name))
        return [GroupPublic(id=g.id, name=g.name, description=g.description, devices=n) for g, n in rows]


@router.post("/groups", tags=["groups"], status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_group(body: GroupCreate, runtime: RuntimeDep, audit: RequiresDeviceWrite) -> GroupPublic:
    audit.detail = {"group": body.name}
    async with runtime.db.write() as session:
        if (await session.execute(select(Group.id).where(Group.name == body.name))).first():
            raise conflict(f"the group {body.name!r} exists")
        group = Group(name=body.name, description=body.description)
        session.add(group)
        await session.flush()
        return await _group_public(session, group)


@router.patch("/groups/{group_id}", tags=["groups"], responses={**NOT_FOUND, **CONFLICT})
async def update_group(group_id: IdPath, body: GroupUpdate, runtime: RuntimeDep,
                       audit: RequiresDeviceWrite) -> GroupPublic:
    audit.detail = {"group_id": group_id, "changed": sorted(body.model_fields_set)}
    async with runtime.db.write() as session:
        group = await session.get(Group, group_id)
        if group is None:
            raise not_found("group")
        if body.name is not None and body.name != group.name:
            if (await session.execute(select(Group.id).where(Group.name == body.name))).first():
                raise conflict(f"the group {body.name!r} exists")
            group.name = body.name
        if body.description is not None:
            group.description = body.description
        await session.flush()
        return await _group_public(session, group)


@router.delete("/groups/{group_id}", tags=["groups"], status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_group(group_id: IdPath, runtime: RuntimeDep, audit: RequiresDeviceWrite) -> None:
    """Delete a group; its devices stay, without a group."""
    audit.detail = {"group_id": group_id}
    async with runtime.db.write() as session:
        group = await session.get(Group, group_id)
        if group is None:
            raise not_found("group")
        audit.detail["group"] = group.name
        await session.execute(delete(Group).where(Group.id == group_id))
