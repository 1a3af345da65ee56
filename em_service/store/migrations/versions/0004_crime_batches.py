"""Police crime batches (em_service.scenes.batches): batches, their crimes, matching runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Registers the batch models on the shared metadata (autogenerate comparisons); the operations
# below do not use them.
import em_service.scenes.batches.store  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crime_batches",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("force_code", sa.String(length=16), nullable=False),
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("rows_received", sa.Integer(), nullable=False),
        sa.Column("rows_accepted", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rejections_json", sa.Text(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_crime_batches")),
    )
    with op.batch_alter_table("crime_batches") as b:
        b.create_index(b.f("ix_crime_batches_force_code"), ["force_code"], unique=False)
        b.create_index(b.f("ix_crime_batches_updated_at"), ["updated_at"], unique=False)
    op.create_table(
        "crime_batch_crimes",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("crime_reference", sa.String(length=64), nullable=False),
        sa.Column("scene_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("type_code", sa.String(length=8), nullable=False),
        sa.Column("type_description", sa.String(length=100), nullable=False),
        sa.Column("time_from", TZ, nullable=False),
        sa.Column("time_to", TZ, nullable=False),
        sa.Column("datum", sa.String(length=8), nullable=False),
        sa.Column("easting", sa.Double(), nullable=True),
        sa.Column("northing", sa.Double(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("radius_m", sa.Double(), nullable=False),
        sa.Column("crime_text", sa.Text(), nullable=False),
        sa.Column("searched_run_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["crime_batches.batch_id"],
            name=op.f("fk_crime_batch_crimes_batch_id_crime_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "crime_reference", name=op.f("pk_crime_batch_crimes")),
    )
    with op.batch_alter_table("crime_batch_crimes") as b:
        b.create_index(b.f("ix_crime_batch_crimes_scene_id"), ["scene_id"], unique=False)
    op.create_table(
        "crime_batch_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=80), nullable=False),
        sa.Column("parameters_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("crimes", sa.Integer(), nullable=False),
        sa.Column("crimes_searched", sa.Integer(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("results_json", sa.Text(), nullable=True),
        sa.Column("changes_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["crime_batches.batch_id"],
            name=op.f("fk_crime_batch_runs_batch_id_crime_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_crime_batch_runs")),
    )
    with op.batch_alter_table("crime_batch_runs") as b:
        b.create_index(b.f("ix_crime_batch_runs_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    op.drop_table("crime_batch_runs")
    op.drop_table("crime_batch_crimes")
    op.drop_table("crime_batches")
