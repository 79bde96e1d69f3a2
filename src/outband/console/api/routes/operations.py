"""Fleet operations: ``POST /api/operations/{name}`` starts a job on the devices a selection names.

One route per operation (each needs its own permission, and its parameters are its own schema)::

    POST /api/operations/power  {"target": {"tags": ["lab"]}, "params": {"action": "on"}}
    -> 202 {"id": 7, "status": "pending", "total": 40, "counts": {...}, ...}

Follow the job with ``GET /api/jobs/7`` or ``GET /api/jobs/7/events``.  A selection naming a device, tag or
group that does not exist is a 422 and starts nothing; so is a role without the operation's permission (403).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, create_model

from ...audit import AuditScope
from ...devices.repository import SelectionError, resolve_selection
from ...jobs.operations import OPERATIONS, Operation
from ...jobs.runner import JobRequest
from ...jobs.schemas import JobPublic, OperationInfo
from ...runtime import Runtime
from ...schemas import Selection
from ..common import selection_failed, unprocessable
from ..deps import RequiresJobRead, RuntimeDep, require
from .jobs import job_public, job_runner

router = APIRouter(prefix="/operations", tags=["operations"])


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _takes_nothing(model: type[BaseModel]) -> bool:
    return not any(field.is_required() for field in model.model_fields.values()) and "root" not in model.model_fields


def request_model(operation: Operation) -> type[BaseModel]:
    """``{"target": Selection, "params": <the operation's params>}``."""
    params: Any = (operation.params, Field(default_factory=operation.params)) if _takes_nothing(operation.params) \
        else (operation.params, ...)
    name = "".join(part.capitalize() for part in operation.name.split("_")) + "Request"
    model: type[BaseModel] = create_model(name, __base__=_Request, target=(Selection, ...), params=params)
    return model


async def start_job(runtime: Runtime, audit: AuditScope, operation: Operation, target: Selection,
                    params: BaseModel) -> JobPublic:
    runner = job_runner(runtime)
    async with runtime.db.read() as session:
        try:
            device_ids = await resolve_selection(session, target)
        except SelectionError as exc:
            raise selection_failed(exc) from None
    if not device_ids:
        raise unprocessable("the selection names no devices")
    values = params.model_dump(mode="json")
    job_id = await runner.submit(JobRequest(operation.name, values, device_ids, created_by=audit.actor,
                                            created_by_id=audit.actor_id))
    audit.devices = device_ids
    audit.detail = {"operation": operation.name, "params": values, "job_id": job_id, "devices": len(device_ids)}
    return await job_public(runtime, job_id)


def _route(operation: Operation) -> Callable[..., Awaitable[JobPublic]]:
    body_model = request_model(operation)

    async def submit(body: Any, runtime: Runtime, audit: AuditScope) -> JobPublic:
        return await start_job(runtime, audit, operation, body.target, body.params)

    submit.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body_model),
        inspect.Parameter("runtime", inspect.Parameter.KEYWORD_ONLY, annotation=RuntimeDep),
        inspect.Parameter("audit", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[
            AuditScope, Depends(require(operation.permission), scope="function")]),
    ], return_annotation=JobPublic)
    submit.__doc__ = f"{operation.summary}  Needs {operation.permission.value}; returns the job (202)."
    return submit


def _add_routes() -> None:
    for operation in OPERATIONS.values():
        router.add_api_route(
            f"/{operation.name}", _route(operation), methods=["POST"], name=f"operation_{operation.name}",
            status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic, summary=operation.summary,
            responses={403: {"description": f"The role lacks {operation.permission.value}."},
                       422: {"description": "Bad parameters, or the selection names unknown devices."},
                       503: {"description": "The job runner is not running."}})


_add_routes()


@router.get("")
async def list_operations(runtime: RuntimeDep, audit: RequiresJobRead) -> list[OperationInfo]:
    """Every operation with the permission it needs and the JSON schema of its params."""
    return [OperationInfo(name=op.name, permission=op.permission, summary=op.summary,
                          params=op.params.model_json_schema()) for op in OPERATIONS.values()]
