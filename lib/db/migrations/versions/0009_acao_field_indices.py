"""Indexes on acao_field's cliente_id, endereco_id and historico_id: step 04 reads the outbox a batch
of clients at a time (the actions of those clients, their addresses and their events) instead of the
whole table at once, so each batch's read must not scan the table.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("cliente_id", "endereco_id", "historico_id")


def upgrade() -> None:
    for column in COLUMNS:
        op.create_index(f"ix_acao_field_{column}", "acao_field", [column])


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_acao_field_{column}", table_name="acao_field")
