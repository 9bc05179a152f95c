"""os.cliente_assinatura: the fingerprint of the client data a card carried when last synced.

Two cards of one person each hold a copy of the client's data in iSales; step 03 lets only a
card whose copy changed since its last sync update the client, so an edit made on one card is
not undone by the other card's unchanged copy.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.add_column(sa.Column("cliente_assinatura", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.drop_column("cliente_assinatura")
