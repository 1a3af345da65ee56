"""Escalation of unacknowledged critical alerts: the alert's escalation level and time, and the
level of an ``escalated`` outbox event.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as b:
        b.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        b.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("alert_events") as b:
        b.add_column(sa.Column("level", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_events") as b:
        b.drop_column("level")
    with op.batch_alter_table("alerts") as b:
        b.drop_column("escalated_at")
        b.drop_column("escalation_level")
