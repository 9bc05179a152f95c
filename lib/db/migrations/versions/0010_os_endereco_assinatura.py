"""os.endereco_assinatura: the fingerprint of the address data a card carried when last synced.

Two cards of one client at one address share one endereco row but each holds its own copy of the
address in iSales (the map link, hence coordinates, may differ). Step 03 lets only a card whose
copy changed since its last sync update the shared row, so refreshing one card at a time does not
flip the row (and the FieldControl tickets that show it) back and forth. NULL: unknown, counts as
changed once.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.add_column(sa.Column("endereco_assinatura", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.drop_column("endereco_assinatura")
