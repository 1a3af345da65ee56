"""Token expiry: ``api_tokens.expires_at`` (every token expires; renewable).

Tokens that exist at the upgrade expire 90 days after the upgrade (not after their creation:
old tokens would otherwise all stop at once, admins' included), so operators have a full
period to renew or replace them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from em_service.store.types import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
#: Lifetime given to the tokens that exist at the upgrade (the default EM_TOKEN_TTL_DAYS).
EXISTING_TTL = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as b:
        b.add_column(sa.Column("expires_at", TZ, nullable=True))
    table = sa.table("api_tokens", sa.column("expires_at", UtcDateTime()))
    op.execute(
        table.update()
        .where(table.c.expires_at.is_(None))
        .values(expires_at=datetime.now(UTC) + EXISTING_TTL)
    )
    with op.batch_alter_table("api_tokens") as b:
        b.alter_column("expires_at", existing_type=TZ, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as b:
        b.drop_column("expires_at")
