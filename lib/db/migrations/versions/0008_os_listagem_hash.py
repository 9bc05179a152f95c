"""os.listagem_hash: the fingerprint of the card's row in the funnel listing that came with the
stored details. Step 01 fetches a card in detail when its listing row changed since (a rename, a
new salesperson…), at no extra cost: the listing is read on every run anyway. NULL (rows from
before this revision) means "unknown" and triggers nothing: the rolling refresh fills it in.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.add_column(sa.Column("listagem_hash", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("os") as batch:
        batch.drop_column("listagem_hash")
