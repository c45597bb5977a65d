"""Budgets and limits: the budgets set (``ai_gateway_budgets``) and what each has counted (``ai_gateway_spend``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ai_gateway_budgets",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("limit", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(255)),
        sa.Column("updated_at", WHEN),
    )
    op.create_table(
        "ai_gateway_spend",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("window", WHEN, primary_key=True),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("admitted", sa.BigInteger, nullable=False),
        sa.Column("settled", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ai_gateway_spend")
    op.drop_table("ai_gateway_budgets")
