"""CIRA tunnel history: one row per tunnel of a device, from its start to its end.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cira_tunnels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("mps_node", sa.String(length=64), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_cira_tunnels_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cira_tunnels")),
    )
    with op.batch_alter_table("cira_tunnels", schema=None) as batch_op:
        batch_op.create_index("ix_cira_tunnels_device_connected", ["device_id", "connected_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cira_tunnels", schema=None) as batch_op:
        batch_op.drop_index("ix_cira_tunnels_device_connected")
    op.drop_table("cira_tunnels")
