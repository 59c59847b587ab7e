"""Telemetry: ``sensor.silent`` alerts — an alert kind, no temperature for it, and the sensor's
open silence alert.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry_alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="temperature", nullable=False)
        )
        batch_op.alter_column("temp_c", existing_type=sa.Float(), nullable=True)
        batch_op.create_check_constraint(
            batch_op.f("ck_telemetry_alert_kind_known"),
            "kind IN ('temperature', 'sensor.silent')",
        )
    with op.batch_alter_table("telemetry_sensor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("silent_alert_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetry_sensor", schema=None) as batch_op:
        batch_op.drop_column("silent_alert_id")
    with op.batch_alter_table("telemetry_alert", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_telemetry_alert_kind_known"), type_="check")
        batch_op.alter_column("temp_c", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("kind")
