"""A covering index on alerts for the caseload review: (offender_id, occurred_at) extended with
the columns the review reads (type, severity, status, episode_end), so rating 500 people over
14 days reads the index, not the rows. It replaces the two-column index it starts with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["offender_id", "occurred_at", "type", "severity", "status", "episode_end"]


def upgrade() -> None:
    op.create_index("ix_alerts_offender_occurred_cover", "alerts", COLUMNS)
    op.drop_index("ix_alerts_offender_occurred", table_name="alerts")


def downgrade() -> None:
    op.create_index("ix_alerts_offender_occurred", "alerts", ["offender_id", "occurred_at"])
    op.drop_index("ix_alerts_offender_occurred_cover", table_name="alerts")
