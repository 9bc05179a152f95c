"""What comes back from FieldControl: the origin of each status-history row (iSales or FieldControl),
the human identifier of each sent ticket, the known status of each task of the orders made from our
tickets (tarefa_field), and small named marks such as the time of the last orders check (marcador).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    # every row written so far came from iSales (a column move, or the ticket sent for it)
    with op.batch_alter_table("os_status_historico") as batch:
        batch.add_column(sa.Column("origem", sa.String(20), nullable=False, server_default="isales"))
        batch.add_column(sa.Column("ticket_identificador", sa.String(50)))
    op.create_table(
        "tarefa_field",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tarefa_field_id", sa.String(255), nullable=False, unique=True),
        sa.Column("ordem_field_id", sa.String(255), nullable=False),
        sa.Column("ordem_identificador", sa.String(50)),
        sa.Column("ticket_field_id", sa.String(255)),
        sa.Column("os_id", sa.Integer),
        sa.Column("historico_id", sa.Integer),
        sa.Column("status", sa.String(20)),
        sa.Column("data_status", sa.DateTime),
        sa.Column("atualizada_em", sa.DateTime, nullable=False),
        **MYSQL,
    )
    op.create_index("ix_tarefa_field_ordem", "tarefa_field", ["ordem_field_id"])
    op.create_index("ix_tarefa_field_os_id", "tarefa_field", ["os_id"])
    op.create_table(
        "marcador",
        sa.Column("chave", sa.String(64), primary_key=True),
        sa.Column("valor", sa.String(255)),
        sa.Column("atualizado_em", sa.DateTime, nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("marcador")
    op.drop_table("tarefa_field")
    with op.batch_alter_table("os_status_historico") as batch:
        batch.drop_column("ticket_identificador")
        batch.drop_column("origem")
