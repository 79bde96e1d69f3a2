"""Small pieces several routers share: path parameters, error bodies and conversions of domain errors into
HTTP errors (raised inside the route, so the audit records the refusal as ``failed``, not as a fault)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import HTTPException, Path, status
from pydantic import BaseModel

from ..devices.connect import DeviceCheckError
from ..devices.repository import SelectionError
from ..schemas import DeviceCheckFailure

IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ErrorDetail(BaseModel):
    detail: str


class CheckErrorDetail(BaseModel):
    detail: DeviceCheckFailure


NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {404: {"model": ErrorDetail}}
CONFLICT: Final[dict[int | str, dict[str, Any]]] = {409: {"model": ErrorDetail}}


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no such {what}")


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def check_failed(exc: DeviceCheckError) -> HTTPException:
    body = DeviceCheckFailure(reason=exc.reason, message=exc.message, presented_fingerprint=exc.presented_fingerprint)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, body.model_dump())


def selection_failed(exc: SelectionError) -> HTTPException:
    return unprocessable(str(exc))
