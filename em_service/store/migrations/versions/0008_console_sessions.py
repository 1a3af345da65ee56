"""Console sessions in the database (issue 14: several API processes share them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("sid_sha256", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("purposes_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sid_sha256", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions") as b:
        b.create_index(b.f("ix_console_sessions_principal"), ["principal"], unique=False)
        b.create_index(b.f("ix_console_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("console_sessions")
