"""Fix the legacy schema's weaknesses, losing nothing; add the field change log (alteracao).

- utf8mb4 on MySQL (emoji, every accent); long names (nome 50 → 500, responsavel_financiamento 255 → 500), long map links (TEXT);
- coordinates and money from text to Numeric: each legacy text is parsed, the row keeps the number,
  and every value whose text changed (or could not be read: NULL) is written to `alteracao`
  with the original text, so the conversion is auditable and reversible by hand;
- status history learns the iSales column before/after, the run, and the FieldControl ticket:
  legacy 'ativo' becomes 'instalacao' (logged in `alteracao`), legacy rows already sent keep
  counting as sent;
- indexes on the foreign keys (SQLite does not create them).

The parsers here are frozen copies on purpose: a migration must keep doing what it did.

Revision ID: 0002
Revises: 0001
"""

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ORIGIN = "migracao 0002"
LEGACY_TABLES = ("cliente", "endereco", "os", "os_status_historico", "pagamento")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _money(text):
    s = re.sub(r"[^\d,.\-]", "", str(text))
    if not s:
        return None
    if "," in s:
        s = s.replace(".", "").replace(",", ".")
    elif s.count(".") > 1 or re.fullmatch(r"-?\d{1,3}\.\d{3}", s):
        s = s.replace(".", "")
    try:
        value = Decimal(s).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return value if abs(value) < Decimal("1e12") else None


def _coordinate(text):
    s = str(text).strip().replace(",", ".")
    try:
        value = Decimal(s).quantize(Decimal("0.0000001"))
    except InvalidOperation:
        return None
    return value if abs(value) <= 180 else None


def _convert(bind, log, table: str, column: str, parse) -> None:
    t = sa.table(table, sa.column("id"), sa.column(column))
    rows = bind.execute(sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None))).all()
    for row_id, text in rows:
        value = parse(text) if str(text).strip() else None
        canonical = None if value is None else str(value)
        if canonical != text:
            bind.execute(t.update().where(t.c.id == row_id).values({column: canonical}))
            log.append({"tabela": table, "registro_id": row_id, "campo": column,
                        "valor_anterior": text, "valor_novo": canonical})


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "mysql":
        for table in LEGACY_TABLES:
            op.execute(f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    alteracao = op.create_table(
        "alteracao",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tabela", sa.String(50), nullable=False),
        sa.Column("registro_id", sa.Integer, nullable=False),
        sa.Column("campo", sa.String(64), nullable=False),
        sa.Column("valor_anterior", sa.Text),
        sa.Column("valor_novo", sa.Text),
        sa.Column("execucao_id", sa.Integer),
        sa.Column("origem", sa.String(50)),
        sa.Column("alterado_em", sa.DateTime, nullable=False),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_alteracao_registro", "alteracao", ["tabela", "registro_id"])

    # 1. text → canonical numeric text (or NULL), every change logged
    log: list[dict] = []
    _convert(bind, log, "endereco", "latitude", _coordinate)
    _convert(bind, log, "endereco", "longitude", _coordinate)
    _convert(bind, log, "os", "valor", _money)
    _convert(bind, log, "pagamento", "valor_seguro", _money)
    hist = sa.table("os_status_historico", sa.column("id"), sa.column("status"))
    for (row_id,) in bind.execute(sa.select(hist.c.id).where(hist.c.status == "ativo")).all():
        log.append({"tabela": "os_status_historico", "registro_id": row_id, "campo": "status",
                    "valor_anterior": "ativo", "valor_novo": "instalacao"})
    bind.execute(hist.update().where(hist.c.status == "ativo").values(status="instalacao"))

    # 2. the new shape
    with op.batch_alter_table("cliente") as batch:
        batch.alter_column("nome", existing_type=sa.String(50), type_=sa.String(500))
        batch.add_column(sa.Column("criado_em", sa.DateTime))
        batch.add_column(sa.Column("atualizado_em", sa.DateTime))
    with op.batch_alter_table("endereco") as batch:
        batch.alter_column("numero", existing_type=sa.String(20), type_=sa.String(50))
        batch.alter_column("link_localizacao", existing_type=sa.String(500), type_=sa.Text)
        batch.alter_column("latitude", existing_type=sa.String(50), type_=sa.Numeric(10, 7))
        batch.alter_column("longitude", existing_type=sa.String(50), type_=sa.Numeric(10, 7))
        batch.add_column(sa.Column("fonte_coordenadas", sa.String(20)))
        batch.add_column(sa.Column("criado_em", sa.DateTime))
        batch.add_column(sa.Column("atualizado_em", sa.DateTime))
        batch.create_index("ix_endereco_cliente_id", ["cliente_id"])
    with op.batch_alter_table("os") as batch:
        batch.alter_column("modulos", existing_type=sa.String(255), type_=sa.String(500))
        batch.alter_column("valor", existing_type=sa.String(50), type_=sa.Numeric(14, 2))
        batch.alter_column("acesso", existing_type=sa.String(255), type_=sa.Text)
        batch.add_column(sa.Column("status", sa.String(20)))
        batch.add_column(sa.Column("detalhes_em", sa.DateTime))
        batch.add_column(sa.Column("criado_em", sa.DateTime))
        batch.add_column(sa.Column("atualizado_em", sa.DateTime))
        batch.create_index("ix_os_cliente_id", ["cliente_id"])
        batch.create_index("ix_os_endereco_id", ["endereco_id"])
    with op.batch_alter_table("os_status_historico") as batch:
        batch.add_column(sa.Column("status_anterior", sa.String(50)))
        batch.add_column(sa.Column("coluna_anterior", sa.Integer))
        batch.add_column(sa.Column("coluna_id", sa.Integer))
        batch.add_column(sa.Column("execucao_id", sa.Integer))
        batch.add_column(sa.Column("ticket_tipo", sa.String(20)))
        batch.add_column(sa.Column("ticket_field_id", sa.String(255)))
        batch.add_column(sa.Column("enviado_em", sa.DateTime))
        batch.add_column(sa.Column("motivo_dispensa", sa.Text))
        batch.create_index("ix_os_status_historico_os_id", ["os_id"])
    with op.batch_alter_table("pagamento") as batch:
        batch.alter_column("valor_seguro", existing_type=sa.String(50), type_=sa.Numeric(14, 2))
        batch.alter_column("responsavel_financiamento", existing_type=sa.String(255), type_=sa.String(500))
        batch.add_column(sa.Column("criado_em", sa.DateTime))
        batch.add_column(sa.Column("atualizado_em", sa.DateTime))
        batch.create_index("ix_pagamento_os_id", ["os_id"])

    # 3. legacy facts in the new columns
    endereco = sa.table("endereco", sa.column("latitude"), sa.column("fonte_coordenadas"))
    bind.execute(endereco.update().where(endereco.c.latitude.is_not(None)).values(fonte_coordenadas="legado"))
    _legacy_history(bind, log)
    if log:
        moment = _now()
        bind.execute(alteracao.insert(), [dict(entry, origem=ORIGIN, alterado_em=moment) for entry in log])


def _legacy_history(bind, log: list[dict]) -> None:
    """Sent legacy rows count as sent tickets; the current status of each os comes from its last row."""
    hist = sa.table("os_status_historico", sa.column("id"), sa.column("os_id"), sa.column("status"),
                    sa.column("enviado_field"), sa.column("ticket_tipo"), sa.column("ticket_field_id"))
    os_t = sa.table("os", sa.column("id"), sa.column("field_id"), sa.column("status"))
    rows = bind.execute(sa.select(hist.c.id, hist.c.os_id, hist.c.status, hist.c.enviado_field)
                        .order_by(hist.c.os_id, hist.c.id)).all()
    tickets = dict(bind.execute(sa.select(os_t.c.id, os_t.c.field_id).where(os_t.c.field_id.is_not(None))).all())
    last_status: dict[int, str] = {}
    sent_for: set[int] = set()
    for row_id, os_id, status, sent in rows:
        last_status[os_id] = status
        if sent:
            kind = "cancelamento" if status == "cancelado" else "instalacao"
            bind.execute(hist.update().where(hist.c.id == row_id).values(ticket_tipo=kind))
            sent_for.add(os_id)
    # The first version set os.field_id when it created the ticket: an os with a ticket id but no
    # row marked as sent had its first 'instalacao' row sent (it must not be sent again).
    for os_id, ticket in tickets.items():
        if os_id in sent_for:
            continue
        first = next((r for r in rows if r[1] == os_id and r[2] == "instalacao"), None)
        if first is not None:
            bind.execute(hist.update().where(hist.c.id == first[0])
                         .values(enviado_field=True, ticket_tipo="instalacao", ticket_field_id=ticket))
            log.append({"tabela": "os_status_historico", "registro_id": first[0], "campo": "enviado_field",
                        "valor_anterior": "0", "valor_novo": f"1 (ticket {ticket} já existia em os.field_id)"})
    for os_id, status in last_status.items():
        bind.execute(os_t.update().where(os_t.c.id == os_id).values(status=status))


def downgrade() -> None:
    raise NotImplementedError("a migração 0002 não é reversível automaticamente (veja a tabela alteracao)")
