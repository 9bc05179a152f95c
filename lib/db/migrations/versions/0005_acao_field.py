"""Outbox of FieldControl writes (acao_field): each remote action is recorded before it is sent.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acao_field",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chave", sa.String(191), nullable=False, unique=True),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("estado", sa.String(20), nullable=False),
        sa.Column("cliente_id", sa.Integer),
        sa.Column("endereco_id", sa.Integer),
        sa.Column("historico_id", sa.Integer),
        sa.Column("payload", sa.Text),
        sa.Column("field_id", sa.String(255)),
        sa.Column("tentativas", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ultimo_erro", sa.Text),
        sa.Column("criada_em", sa.DateTime, nullable=False),
        sa.Column("atualizada_em", sa.DateTime, nullable=False),
        sa.Column("concluida_em", sa.DateTime),
        sa.Column("execucao_id", sa.Integer),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_acao_field_estado", "acao_field", ["estado"])


def downgrade() -> None:
    op.drop_table("acao_field")
