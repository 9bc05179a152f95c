"""Runs of each step (execucao) and the pending-item store (pendencia).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "execucao",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("etapa", sa.String(10), nullable=False),
        sa.Column("iniciada_em", sa.DateTime, nullable=False),
        sa.Column("terminada_em", sa.DateTime),
        sa.Column("codigo_saida", sa.Integer),
        sa.Column("contagens", sa.Text),
        sa.Column("mensagem", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("maquina", sa.String(255)),
        **MYSQL,
    )
    op.create_index("ix_execucao_etapa", "execucao", ["etapa", "iniciada_em"])
    op.create_table(
        "pendencia",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("etapa", sa.String(10), nullable=False),
        sa.Column("chave", sa.String(191), nullable=False),
        sa.Column("isales_id", sa.String(50)),
        sa.Column("motivo", sa.Text, nullable=False),
        sa.Column("primeira_vez", sa.DateTime, nullable=False),
        sa.Column("ultima_vez", sa.DateTime, nullable=False),
        sa.Column("tentativas", sa.Integer, nullable=False, server_default="1"),
        sa.Column("resolvida_em", sa.DateTime),
        sa.Column("execucao_id", sa.Integer),
        sa.UniqueConstraint("etapa", "chave", name="uq_pendencia_etapa_chave"),
        **MYSQL,
    )
    op.create_index("ix_pendencia_aberta", "pendencia", ["resolvida_em", "etapa"])


def downgrade() -> None:
    op.drop_table("pendencia")
    op.drop_table("execucao")
