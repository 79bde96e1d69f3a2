"""Redirect tickets any console process can check: the ones already used, until they would have expired.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_tickets",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_spent_tickets")),
    )
    with op.batch_alter_table("spent_tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spent_tickets_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spent_tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_tickets_expires_at"))
    op.drop_table("spent_tickets")
