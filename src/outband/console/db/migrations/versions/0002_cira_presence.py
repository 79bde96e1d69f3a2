"""CIRA: per-device MPS credentials on devices, and the presence of each device's tunnel.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cira_presence",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("mps_node", sa.String(length=64), nullable=True),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("connected_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_keepalive", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_cira_presence_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_cira_presence")),
    )
    with op.batch_alter_table("cira_presence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cira_presence_mps_node"), ["mps_node"], unique=False)
        batch_op.create_index(batch_op.f("ix_cira_presence_online"), ["online"], unique=False)

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cira_username", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cira_password_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("cira_password_enc")
        batch_op.drop_column("cira_username")

    with op.batch_alter_table("cira_presence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cira_presence_online"))
        batch_op.drop_index(batch_op.f("ix_cira_presence_mps_node"))

    op.drop_table("cira_presence")
