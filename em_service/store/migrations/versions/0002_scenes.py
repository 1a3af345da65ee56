"""Crime scenes and their matches (em_service.scenes).

``scenes``: reported scenes with their projected centre and last search; ``scene_matches``: the
strongest match or the exclusion of each offender per scene, its evidence snapshot and an
alert outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The scene models live in their domain package; importing it registers them on the shared
# metadata, so that autogenerate comparisons (tests/store/test_migrations.py) see them. The
# operations below do not use the models: this revision stays as written.
import em_service.scenes.store  # noqa: F401

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenes",
        sa.Column("scene_id", sa.String(length=64), nullable=False),
        sa.Column("crime_reference", sa.String(length=64), nullable=False),
        sa.Column("crime_type", sa.String(length=32), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("x_m", sa.Double(), nullable=False),
        sa.Column("y_m", sa.Double(), nullable=False),
        sa.Column("radius_m", sa.Double(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("low_precision", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("searched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("scene_id", name=op.f("pk_scenes")),
    )
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scenes_crime_reference"), ["crime_reference"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_scenes_window_end"), ["window_end"], unique=False)

    op.create_table(
        "scene_matches",
        sa.Column("scene_id", sa.String(length=64), nullable=False),
        sa.Column("offender_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("closest_m", sa.Double(), nullable=False),
        sa.Column("closest_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closest_source", sa.String(length=8), nullable=False),
        sa.Column("closest_lat", sa.Double(), nullable=True),
        sa.Column("closest_lon", sa.Double(), nullable=True),
        sa.Column("dwell_s", sa.Double(), nullable=False),
        sa.Column("fixes_inside", sa.Integer(), nullable=False),
        sa.Column("worst_accuracy_m", sa.Double(), nullable=True),
        sa.Column("in_window", sa.Boolean(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("alerted_rank", sa.Integer(), nullable=False),
        sa.Column("pending_alert_json", sa.Text(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scene_id"],
            ["scenes.scene_id"],
            name=op.f("fk_scene_matches_scene_id_scenes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scene_id", "offender_id", name=op.f("pk_scene_matches")),
    )
    with op.batch_alter_table("scene_matches", schema=None) as batch_op:
        batch_op.create_index("ix_scene_matches_offender", ["offender_id", "rank"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scene_matches", schema=None) as batch_op:
        batch_op.drop_index("ix_scene_matches_offender")
    op.drop_table("scene_matches")
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scenes_window_end"))
        batch_op.drop_index(batch_op.f("ix_scenes_crime_reference"))
    op.drop_table("scenes")
