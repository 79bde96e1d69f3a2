"""Console accounts (admin only).  The console never leaves itself without an active admin."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ...auth import hash_password_async, revoke_sessions
from ...db.base import utcnow
from ...db.models import User
from ...permissions import Role
from ...schemas import UserCreate, UserPublic, UserUpdate
from ..common import CONFLICT, NOT_FOUND, IdPath, conflict, not_found
from ..deps import PrincipalDep, RequiresUserAdmin, RuntimeDep

router = APIRouter(prefix="/users", tags=["users"])


async def _other_active_admins(session: AsyncSession, user_id: int) -> int:
    return int((await session.execute(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN, User.disabled.is_(False), User.id != user_id))).scalar_one())


@router.get("")
async def list_users(runtime: RuntimeDep, audit: RequiresUserAdmin) -> list[UserPublic]:
    async with runtime.db.read() as session:
        return [UserPublic.model_validate(u) for u in (await session.execute(select(User).order_by(User.id))).scalars()]


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_user(body: UserCreate, runtime: RuntimeDep, audit: RequiresUserAdmin) -> UserPublic:
    audit.detail = {"username": body.username, "role": body.role}
    password_hash = await hash_password_async(body.password)
    async with runtime.db.write() as session:
        if (await session.execute(select(User.id).where(User.username == body.username))).first():
            raise conflict(f"the account {body.username!r} exists")
        user = User(username=body.username, password_hash=password_hash, role=body.role)
        session.add(user)
        await session.flush()
        return UserPublic.model_validate(user)


@router.get("/{user_id}", responses=NOT_FOUND)
async def get_user(user_id: IdPath, runtime: RuntimeDep, audit: RequiresUserAdmin) -> UserPublic:
    async with runtime.db.read() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise not_found("account")
    return UserPublic.model_validate(user)


@router.patch("/{user_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_user(user_id: IdPath, body: UserUpdate, runtime: RuntimeDep, audit: RequiresUserAdmin) -> UserPublic:
    """Change role, password (which also lifts a login lockout and ends the account's sessions) or
    disable the account."""
    audit.detail = {"user_id": user_id, "changed": sorted(body.model_fields_set), "role": body.role,
                    "disabled": body.disabled}
    password_hash = await hash_password_async(body.password) if body.password is not None else None
    async with runtime.db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise not_found("account")
        demoted = (body.role is not None and body.role is not Role.ADMIN) or body.disabled is True
        if user.role is Role.ADMIN and demoted and not await _other_active_admins(session, user.id):
            raise conflict("this is the last active admin account")
        if body.role is not None:
            user.role = body.role
        if body.disabled is not None:
            user.disabled = body.disabled
        if password_hash is not None:
            user.password_hash = password_hash
            user.password_changed_at = utcnow()
            user.failed_logins, user.locked_until = 0, None
        public = UserPublic.model_validate(user)
    if password_hash is not None or body.disabled:
        await revoke_sessions(runtime.db, user_id)
    return public


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def delete_user(user_id: IdPath, principal: PrincipalDep, runtime: RuntimeDep, audit: RequiresUserAdmin) -> None:
    audit.detail = {"user_id": user_id}
    if user_id == principal.user_id:
        raise conflict("you cannot delete your own account")
    async with runtime.db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise not_found("account")
        if user.role is Role.ADMIN and not await _other_active_admins(session, user.id):
            raise conflict("this is the last active admin account")
        audit.detail["username"] = user.username
        await session.delete(user)
