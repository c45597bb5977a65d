"""The first tables: the settings record, the audit events, the AI calls and the keyring's secrets.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ai_gateway_settings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.Column("updated_by", sa.String(255)),
        sa.Column("updated_at", WHEN),
    )
    op.create_table(
        "ai_gateway_audit_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("event", JSON, nullable=False),
    )
    op.create_index("ix_ai_gateway_audit_events_at", "ai_gateway_audit_events", ["at"])
    op.create_table(
        "ai_gateway_usage_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("request_id", sa.String(128)),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("groups", JSON),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32)),
        sa.Column("model", sa.String(255)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64)),
        sa.Column("status", sa.Integer),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("latency_ms", sa.Float),
        sa.Column("replica", sa.String(255)),
        sa.Column("details", JSON),
    )
    op.create_index("ix_ai_gateway_usage_events_at", "ai_gateway_usage_events", ["at"])
    op.create_index("ix_ai_gateway_usage_events_username_at", "ai_gateway_usage_events", ["username", "at"])
    op.create_index("ix_ai_gateway_usage_events_model_at", "ai_gateway_usage_events", ["model", "at"])
    op.create_index("ix_ai_gateway_usage_events_request_id", "ai_gateway_usage_events", ["request_id"])
    op.create_table(
        "ai_gateway_secrets",
        sa.Column("service", sa.String(255), primary_key=True),
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ai_gateway_secrets")
    op.drop_table("ai_gateway_usage_events")
    op.drop_table("ai_gateway_audit_events")
    op.drop_table("ai_gateway_settings")
