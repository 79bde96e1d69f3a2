"""The IDE-R image library and booting devices from its images (``console.images``).

Uploading is two steps: ``POST /images`` declares the image (name, kind, size, optionally its SHA-256), then
``PUT /images/{id}/content?offset=N`` sends the bytes in pieces of at most :data:`MAX_PIECE` bytes, in order;
the piece that completes the image gets it checked and ready.  A failed piece can be sent again from the
offset the image reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Final, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ...devices.connect import DeviceTarget
from ...images.boot import BootRun, BootRuns, boot_runs
from ...images.library import Image, ImageError, ImageKind, ImageLibrary, image_library
from ...relay.device import load_target
from ...runtime import Runtime
from ...schemas import Name
from ..common import CONFLICT, NOT_FOUND, ErrorDetail, IdPath, conflict, not_found
from ..deps import PrincipalDep, RequiresDeviceRead, RequiresRedirect, RuntimeDep, client_address

router = APIRouter(tags=["images"])

MAX_PIECE: Final = 16 * 1024 * 1024
"""Largest piece of an upload per request (under the API's body cap)."""
ImageIdPath = Annotated[str, Path(max_length=32, description="16 hex digits.")]
RunIdPath = Annotated[str, Path(max_length=32, description="16 hex digits.")]
"""Not pattern-checked: an id that cannot exist is simply not found."""
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
UPLOAD_ERRORS: Final[dict[int | str, dict[str, object]]] = {
    404: {"model": ErrorDetail}, 409: {"model": ErrorDetail}, 413: {"model": ErrorDetail},
    422: {"model": ErrorDetail},
}


class ImageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="A name to recognise it by (the file name, say).")
    kind: ImageKind = Field(description="cd: an ISO 9660 image; floppy: a floppy or small disk image.")
    size: int = Field(ge=1, description="Bytes the upload will carry.")
    sha256: Sha256 | None = Field(None, description="When given, the upload must have this SHA-256.")


class ImagePublic(BaseModel):
    id: str
    name: str
    kind: ImageKind
    size: int
    received: int
    state: Literal["uploading", "ready"]
    sha256: str | None = Field(description="SHA-256 of the content, once complete.")
    expected_sha256: str | None
    created_at: dt.datetime
    created_by: str | None
    in_use: bool = Field(description="Being served to a device right now.")


class BootRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    boot: bool = Field(True, description="Power the device on (or reset it) to boot from the image; otherwise "
                                         "only attach it and wait for the machine to read it.")
    idle_seconds: float = Field(120.0, ge=5, le=3600, description="Stop serving after this long without a read.")


class BootRunPublic(BaseModel):
    id: str
    device_id: int
    device_name: str
    image_id: str
    image_name: str
    image_size: int
    kind: ImageKind
    boot: bool
    state: Literal["connecting", "serving", "booting", "done", "failed", "cancelled"]
    started_by: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None = Field(description="How serving ended (the host ejected the medium, idle, ...).")
    error_code: str | None = Field(description="busy, disabled, consent, auth, unreachable, timeout, refused, ...")
    error: str | None
    commands: int
    reads: int
    bytes_sent: int
    throughput: float = Field(description="Bytes per second sent to the device.")
    console: list[str] = Field(description="The device's serial console during the run.")
    console_note: str | None


def _library(runtime: Runtime) -> ImageLibrary:
    return image_library(runtime)


def _runs(runtime: Runtime) -> BootRuns:
    return boot_runs(runtime, _library(runtime))


def _image_public(library: ImageLibrary, image: Image) -> ImagePublic:
    return ImagePublic(id=image.id, name=image.name, kind=image.kind, size=image.size, received=image.received,
                       state=image.state, sha256=image.sha256, expected_sha256=image.expected_sha256,
                       created_at=image.created_at, created_by=image.created_by, in_use=library.in_use(image))


def _run_public(run: BootRun) -> BootRunPublic:
    progress = run.progress
    return BootRunPublic(
        id=run.id, device_id=run.device_id, device_name=run.device_name, image_id=run.image.id,
        image_name=run.image.name, image_size=run.image.size, kind=run.image.kind, boot=run.boot, state=run.state,
        started_by=run.started_by, started_at=run.started_at, finished_at=run.finished_at, outcome=run.outcome,
        error_code=run.error_code, error=run.error, commands=progress.commands if progress else 0,
        reads=progress.reads if progress else 0, bytes_sent=progress.bytes_sent if progress else 0,
        throughput=round(progress.throughput, 1) if progress else 0.0, console=list(run.console),
        console_note=run.console_note,
    )


def _http_error(exc: ImageError) -> HTTPException:
    code = {"invalid": status.HTTP_422_UNPROCESSABLE_CONTENT, "conflict": status.HTTP_409_CONFLICT,
            "too_large": status.HTTP_413_CONTENT_TOO_LARGE, "not_found": status.HTTP_404_NOT_FOUND}[exc.kind]
    return HTTPException(code, str(exc))


# ------------------------------------------------------------------------------------------ library

@router.get("/images")
async def list_images(runtime: RuntimeDep, audit: RequiresDeviceRead) -> list[ImagePublic]:
    library = _library(runtime)
    return [_image_public(library, image) for image in library.list()]


@router.post("/images", status_code=status.HTTP_201_CREATED, responses=UPLOAD_ERRORS)
async def create_image(body: ImageCreate, principal: PrincipalDep, runtime: RuntimeDep,
                       audit: RequiresRedirect) -> ImagePublic:
    """Declare an image to upload; then send its bytes with ``PUT /images/{id}/content``."""
    library = _library(runtime)
    audit.detail = {"name": body.name, "kind": body.kind, "size": body.size}
    try:
        image = library.create(body.name, body.kind, body.size, expected_sha256=body.sha256,
                               created_by=principal.username)
    except ImageError as exc:
        raise _http_error(exc) from None
    audit.detail["image"] = image.id
    return _image_public(library, image)


@router.put("/images/{image_id}/content", responses=UPLOAD_ERRORS,
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def upload_image_content(
    image_id: ImageIdPath,
    request: Request,
    runtime: RuntimeDep,
    audit: RequiresRedirect,
    offset: Annotated[int, Query(ge=0, description="Where this piece starts: the image's `received`.")] = 0,
) -> ImagePublic:
    """The next piece of an image's bytes (at most 16 MiB), starting at ``offset``; the piece that completes
    the image gets its SHA-256 (and, for a CD, its ISO 9660 volume) checked."""
    audit.detail = {"image": image_id, "offset": offset}
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_PIECE:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"send at most {MAX_PIECE} bytes per request")

    async def piece() -> AsyncIterator[bytes]:
        total = 0
        async for data in request.stream():
            total += len(data)
            if total > MAX_PIECE:
                raise ImageError("too_large", f"send at most {MAX_PIECE} bytes per request")
            yield data

    library = _library(runtime)
    try:
        image = await library.append(image_id, offset, piece())
    except ImageError as exc:
        raise _http_error(exc) from None
    audit.detail.update(received=image.received, state=image.state)
    if image.state == "ready":
        audit.detail["sha256"] = image.sha256
    return _image_public(library, image)


@router.get("/images/{image_id}", responses=NOT_FOUND)
async def get_image(image_id: ImageIdPath, runtime: RuntimeDep, audit: RequiresDeviceRead) -> ImagePublic:
    library = _library(runtime)
    try:
        return _image_public(library, library.get(image_id))
    except ImageError as exc:
        raise _http_error(exc) from None


@router.delete("/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def delete_image(image_id: ImageIdPath, runtime: RuntimeDep, audit: RequiresRedirect) -> None:
    audit.detail = {"image": image_id}
    try:
        image = _library(runtime).delete(image_id)
    except ImageError as exc:
        raise _http_error(exc) from None
    audit.detail.update(name=image.name, sha256=image.sha256)


# ------------------------------------------------------------------------------------------ booting

@router.post("/devices/{device_id}/ider-boot", status_code=status.HTTP_202_ACCEPTED,
             responses={**NOT_FOUND, **CONFLICT})
async def boot_from_image(device_id: IdPath, body: BootRequest, request: Request, principal: PrincipalDep,
                          runtime: RuntimeDep, audit: RequiresRedirect) -> BootRunPublic:
    """Serve a library image to the device over IDE-R and (unless ``boot`` is false) boot the device from it;
    follow the run at ``GET /ider-runs/{id}``."""
    audit.devices = [device_id]
    audit.detail = {"image": body.image_id, "boot": body.boot}
    library, runs = _library(runtime), _runs(runtime)
    try:
        image = library.get(body.image_id)
    except ImageError as exc:
        raise _http_error(exc) from None
    if image.state != "ready":
        raise conflict("the image is still being uploaded")
    target: DeviceTarget | None = await load_target(runtime, device_id)
    if target is None:
        raise not_found("device")
    if runs.active_on(device_id) is not None:
        raise conflict("the device is already being served an image; stop that run first")
    run = runs.start(principal, target, image, boot=body.boot, idle=body.idle_seconds,
                     client=client_address(request))
    audit.detail["run"] = run.id
    return _run_public(run)


@router.get("/ider-runs")
async def list_boot_runs(runtime: RuntimeDep, audit: RequiresDeviceRead,
                         device_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> list[BootRunPublic]:
    """IDE-R runs of this console process, newest first."""
    return [_run_public(r) for r in _runs(runtime).list() if device_id is None or r.device_id == device_id]


@router.get("/ider-runs/{run_id}", responses=NOT_FOUND)
async def get_boot_run(run_id: RunIdPath, runtime: RuntimeDep, audit: RequiresDeviceRead) -> BootRunPublic:
    run = _runs(runtime).get(run_id)
    if run is None:
        raise not_found("IDE-R run")
    return _run_public(run)


@router.delete("/ider-runs/{run_id}", responses=NOT_FOUND)
async def stop_boot_run(run_id: RunIdPath, runtime: RuntimeDep, audit: RequiresRedirect) -> BootRunPublic:
    """Stop serving the image (the device loses the medium)."""
    audit.detail = {"run": run_id}
    runs = _runs(runtime)
    run = runs.get(run_id)
    if run is None:
        raise not_found("IDE-R run")
    audit.devices = [run.device_id]
    await runs.cancel(run)
    return _run_public(run)
