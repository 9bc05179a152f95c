"""The schema of the first version of the scripts, exactly as it runs in production.

A new database is built from here like any other, so the adoption path (an existing legacy
database is stamped at this revision and upgraded) is the path every database takes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "cliente",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("nome", sa.String(50)),
        sa.Column("doc_pessoal", sa.String(20), unique=True),
        sa.Column("email", sa.String(255)),
        sa.Column("telefone", sa.String(20)),
        sa.Column("telefone_secundario", sa.String(20)),
        sa.Column("field_id", sa.String(255), nullable=True, unique=True),
        sa.Column("criado_pelo_script", sa.Boolean, nullable=True, server_default=sa.false()),
        **MYSQL,
    )
    op.create_table(
        "endereco",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cep", sa.String(10)),
        sa.Column("logradouro", sa.String(255)),
        sa.Column("numero", sa.String(20)),
        sa.Column("complemento", sa.String(255), nullable=True),
        sa.Column("bairro", sa.String(255)),
        sa.Column("cidade", sa.String(255)),
        sa.Column("estado", sa.String(255)),
        sa.Column("link_localizacao", sa.String(500)),
        sa.Column("latitude", sa.String(50)),
        sa.Column("longitude", sa.String(50)),
        sa.Column("location_field_id", sa.String(255)),
        sa.Column("cliente_id", sa.Integer, sa.ForeignKey("cliente.id")),
        **MYSQL,
    )
    op.create_table(
        "os",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tipo_servico", sa.String(255)),
        sa.Column("coluna_id", sa.Integer),
        sa.Column("vendedor", sa.String(255)),
        sa.Column("data_fechamento", sa.DateTime),
        sa.Column("modulos", sa.String(255)),
        sa.Column("inversor1", sa.String(500)),
        sa.Column("inversor2", sa.String(500)),
        sa.Column("inversor3", sa.String(500)),
        sa.Column("valor", sa.String(50)),
        sa.Column("observacoes", sa.Text),
        sa.Column("acesso", sa.String(255)),
        sa.Column("isales_id", sa.String(50), unique=True),
        sa.Column("field_id", sa.String(255), nullable=True, unique=True),
        sa.Column("criado_pelo_script", sa.Boolean, nullable=True, server_default=sa.false()),
        sa.Column("cliente_id", sa.Integer, sa.ForeignKey("cliente.id")),
        sa.Column("endereco_id", sa.Integer, sa.ForeignKey("endereco.id")),
        **MYSQL,
    )
    op.create_table(
        "os_status_historico",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("os_id", sa.Integer, sa.ForeignKey("os.id")),
        sa.Column("status", sa.String(50)),
        sa.Column("data_status", sa.DateTime, server_default=sa.func.current_timestamp()),
        sa.Column("observacao", sa.Text),
        sa.Column("enviado_field", sa.Boolean, server_default=sa.false()),
        **MYSQL,
    )
    op.create_table(
        "pagamento",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("forma_pgto", sa.String(255)),
        sa.Column("responsavel_financiamento", sa.String(255), nullable=True),
        sa.Column("valor_seguro", sa.String(50)),
        sa.Column("observacoes", sa.Text),
        sa.Column("os_id", sa.Integer, sa.ForeignKey("os.id")),
        **MYSQL,
    )


def downgrade() -> None:
    for table in ("pagamento", "os_status_historico", "os", "endereco", "cliente"):
        op.drop_table(table)
