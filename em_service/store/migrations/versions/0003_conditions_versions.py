"""Conditions versions: the version in force (id, topic position) and the newest rejected one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("conditions_version", sa.String(length=16)),
    ("conditions_partition", sa.Integer()),
    ("conditions_offset", sa.BigInteger()),
    ("conditions_published_at", sa.DateTime(timezone=True)),
    ("conditions_rejected_version", sa.String(length=16)),
    ("conditions_rejected_updated_at", sa.DateTime(timezone=True)),
    ("conditions_rejected_at", sa.DateTime(timezone=True)),
    ("conditions_rejected_reason", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("offenders") as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offenders") as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
