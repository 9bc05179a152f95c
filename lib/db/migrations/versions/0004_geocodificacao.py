"""Geocoder cache: every answer (hit or miss, never an error) keyed by provider + normalised query.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "geocodificacao",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chave", sa.String(64), nullable=False, unique=True),
        sa.Column("provedor", sa.String(20), nullable=False),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("consulta", sa.Text, nullable=False),
        sa.Column("encontrado", sa.Boolean, nullable=False),
        sa.Column("latitude", sa.Numeric(10, 7)),
        sa.Column("longitude", sa.Numeric(10, 7)),
        sa.Column("descricao", sa.Text),
        sa.Column("criado_em", sa.DateTime, nullable=False),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    op.drop_table("geocodificacao")
