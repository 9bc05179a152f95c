"""The tables as they are at the head migration (SQLAlchemy Core), with the legacy column names.

Migrations in lib/db/migrations/ build exactly this shape (a test compares them). Conventions:
every DateTime column holds naive UTC, except `data_fechamento` (the business date iSales gives);
money is Numeric(14, 2), coordinates Numeric(10, 7).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}

Money = Numeric(14, 2)
Coordinate = Numeric(10, 7)

cliente = Table(
    "cliente", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("nome", String(500)),  # long company names (razão social) fit
    Column("doc_pessoal", String(20), unique=True),
    Column("email", String(255)),
    Column("telefone", String(20)),
    Column("telefone_secundario", String(20)),
    Column("field_id", String(255), unique=True),
    Column("criado_pelo_script", Boolean, server_default=false()),
    Column("criado_em", DateTime),
    Column("atualizado_em", DateTime),
    **MYSQL,
)

endereco = Table(
    "endereco", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cep", String(10)),
    Column("logradouro", String(255)),
    Column("numero", String(50)),
    Column("complemento", String(255)),
    Column("bairro", String(255)),
    Column("cidade", String(255)),
    Column("estado", String(255)),
    Column("link_localizacao", Text),
    Column("latitude", Coordinate),
    Column("longitude", Coordinate),
    Column("fonte_coordenadas", String(20)),  # link | endereco | cep | legado
    Column("location_field_id", String(255)),
    Column("cliente_id", Integer, ForeignKey("cliente.id"), index=True),
    Column("criado_em", DateTime),
    Column("atualizado_em", DateTime),
    **MYSQL,
)

os = Table(
    "os", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tipo_servico", String(255)),
    Column("coluna_id", Integer),
    Column("vendedor", String(255)),
    Column("data_fechamento", DateTime),
    Column("modulos", String(500)),
    Column("inversor1", String(500)),
    Column("inversor2", String(500)),
    Column("inversor3", String(500)),
    Column("valor", Money),
    Column("observacoes", Text),
    Column("acesso", Text),
    Column("isales_id", String(50), unique=True),
    Column("field_id", String(255), unique=True),
    Column("criado_pelo_script", Boolean, server_default=false()),
    Column("cliente_id", Integer, ForeignKey("cliente.id"), index=True),
    Column("endereco_id", Integer, ForeignKey("endereco.id"), index=True),
    Column("status", String(20)),  # instalacao | aumento | cancelado | outro (lib/status.py)
    Column("detalhes_em", DateTime),  # when iSales details were last fetched (01's incremental rule)
    Column("cliente_assinatura", String(40)),  # sha1 of the client data this card carried (step 03)
    Column("endereco_assinatura", String(40)),  # sha1 of the address data this card carried (step 03)
    Column("listagem_hash", String(40)),  # sha1 of the card's funnel-listing row with those details (01's rule)
    Column("criado_em", DateTime),
    Column("atualizado_em", DateTime),
    **MYSQL,
)

os_status_historico = Table(
    "os_status_historico", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("os_id", Integer, ForeignKey("os.id"), index=True),
    Column("status", String(50)),
    Column("data_status", DateTime),
    Column("observacao", Text),
    Column("enviado_field", Boolean, server_default=false()),
    Column("status_anterior", String(50)),
    Column("coluna_anterior", Integer),
    Column("coluna_id", Integer),
    Column("execucao_id", Integer),
    Column("ticket_tipo", String(20)),  # instalacao | aumento | cancelamento, when a ticket was sent
    Column("ticket_field_id", String(255)),
    Column("enviado_em", DateTime),
    Column("motivo_dispensa", Text),  # why no ticket was (or will be) sent for this event
    # isales: a column move (and the ticket sent for it); fieldcontrol: a task status seen there,
    # `status` holding FieldControl's word (scheduled, in-progress, done, canceled…)
    Column("origem", String(20), nullable=False, server_default="isales"),
    Column("ticket_identificador", String(50)),  # the sent ticket's human identifier ("1#00004143")
    **MYSQL,
)

pagamento = Table(
    "pagamento", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("forma_pgto", String(255)),
    Column("responsavel_financiamento", String(500)),  # a client's name goes here
    Column("valor_seguro", Money),
    Column("observacoes", Text),
    Column("os_id", Integer, ForeignKey("os.id"), index=True),
    Column("criado_em", DateTime),
    Column("atualizado_em", DateTime),
    **MYSQL,
)

# Field-level audit: every change of a field of cliente/endereco/os/pagamento (and conversions
# made by migrations) with the old and new value as text.
alteracao = Table(
    "alteracao", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tabela", String(50), nullable=False),
    Column("registro_id", Integer, nullable=False),
    Column("campo", String(64), nullable=False),
    Column("valor_anterior", Text),
    Column("valor_novo", Text),
    Column("execucao_id", Integer),
    Column("origem", String(50)),  # the step ("03", "04") or the migration that made the change
    Column("alterado_em", DateTime, nullable=False),
    Index("ix_alteracao_registro", "tabela", "registro_id"),
    **MYSQL,
)

# One row per run of a step: used for audit, the summary and 01's incremental decisions.
execucao = Table(
    "execucao", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("etapa", String(10), nullable=False),
    Column("iniciada_em", DateTime, nullable=False),
    Column("terminada_em", DateTime),
    Column("codigo_saida", Integer),
    Column("contagens", Text),  # JSON
    Column("mensagem", Text),
    Column("pid", Integer),
    Column("maquina", String(255)),
    Index("ix_execucao_etapa", "etapa", "iniciada_em"),
    **MYSQL,
)

# Pending items: a record that could not go on, per step, retried on every run until resolved.
pendencia = Table(
    "pendencia", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("etapa", String(10), nullable=False),
    Column("chave", String(191), nullable=False),
    Column("isales_id", String(50)),
    Column("motivo", Text, nullable=False),
    Column("primeira_vez", DateTime, nullable=False),
    Column("ultima_vez", DateTime, nullable=False),
    Column("tentativas", Integer, nullable=False, server_default="1"),
    Column("resolvida_em", DateTime),
    Column("execucao_id", Integer),
    UniqueConstraint("etapa", "chave", name="uq_pendencia_etapa_chave"),
    Index("ix_pendencia_aberta", "resolvida_em", "etapa"),
    **MYSQL,
)

# Geocoder answers, hits and misses (never errors), keyed by provider + normalised query.
geocodificacao = Table(
    "geocodificacao", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chave", String(64), nullable=False, unique=True),  # sha256 hex
    Column("provedor", String(20), nullable=False),
    Column("tipo", String(20), nullable=False),  # endereco | cep | link (a map link's resolution)
    Column("consulta", Text, nullable=False),
    Column("encontrado", Boolean, nullable=False),
    Column("latitude", Coordinate),
    Column("longitude", Coordinate),
    Column("descricao", Text),
    Column("criado_em", DateTime, nullable=False),
    **MYSQL,
)

# acao_field.estado: the outbox's states (lib/steps/push/outbox.py moves actions through them;
# the reports count the `concluida` ones).
OutboxState = Literal["nova", "enviando", "concluida", "incerta", "rejeitada"]
NOVA: OutboxState = "nova"
ENVIANDO: OutboxState = "enviando"
CONCLUIDA: OutboxState = "concluida"
INCERTA: OutboxState = "incerta"
REJEITADA: OutboxState = "rejeitada"

# Outbox of FieldControl writes: recorded before sending, receipt committed after (step 04).
acao_field = Table(
    "acao_field", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chave", String(191), nullable=False, unique=True),
    Column("tipo", String(20), nullable=False),  # customer | location | phone | email | ticket
    Column("estado", String(20), nullable=False),  # see lib/steps/push/outbox.py
    Column("cliente_id", Integer),
    Column("endereco_id", Integer),
    Column("historico_id", Integer),
    Column("payload", Text),
    Column("field_id", String(255)),
    Column("tentativas", Integer, nullable=False, server_default="0"),
    Column("ultimo_erro", Text),
    Column("criada_em", DateTime, nullable=False),
    Column("atualizada_em", DateTime, nullable=False),
    Column("concluida_em", DateTime),
    Column("execucao_id", Integer),
    Index("ix_acao_field_estado", "estado"),
    # step 04 reads the outbox by batch of clients: their actions, addresses and events
    Index("ix_acao_field_cliente_id", "cliente_id"),
    Index("ix_acao_field_endereco_id", "endereco_id"),
    Index("ix_acao_field_historico_id", "historico_id"),
    **MYSQL,
)

# The tasks of the orders FieldControl staff made from our tickets, with the status last seen (step 04).
tarefa_field = Table(
    "tarefa_field", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tarefa_field_id", String(255), nullable=False, unique=True),
    Column("ordem_field_id", String(255), nullable=False),
    Column("ordem_identificador", String(50)),
    Column("ticket_field_id", String(255)),
    Column("os_id", Integer),
    Column("historico_id", Integer),  # the sent event whose ticket became this order
    Column("status", String(20)),
    Column("data_status", DateTime),
    Column("atualizada_em", DateTime, nullable=False),
    Index("ix_tarefa_field_ordem", "ordem_field_id"),
    Index("ix_tarefa_field_os_id", "os_id"),
    **MYSQL,
)

# Small named marks that outlive a run, e.g. `fieldcontrol:ordens` = the last orders check.
marcador = Table(
    "marcador", metadata,
    Column("chave", String(64), primary_key=True),
    Column("valor", String(255)),
    Column("atualizado_em", DateTime, nullable=False),
    **MYSQL,
)

AUDITED_TABLES = ("cliente", "endereco", "os", "pagamento")
