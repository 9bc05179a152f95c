"""A database in the exact shape of the first version of the scripts (docs/legacy_schema.md),
with rows, for the adoption tests."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

MYSQL_DDL = [
    """CREATE TABLE cliente (
        id INT AUTO_INCREMENT PRIMARY KEY,
        nome VARCHAR(50), doc_pessoal VARCHAR(20) UNIQUE, email VARCHAR(255),
        telefone VARCHAR(20), telefone_secundario VARCHAR(20),
        field_id VARCHAR(255) NULL UNIQUE, criado_pelo_script BOOLEAN NULL DEFAULT FALSE
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE endereco (
        id INT AUTO_INCREMENT PRIMARY KEY,
        cep VARCHAR(10), logradouro VARCHAR(255), numero VARCHAR(20), complemento VARCHAR(255) NULL,
        bairro VARCHAR(255), cidade VARCHAR(255), estado VARCHAR(255), link_localizacao VARCHAR(500),
        latitude VARCHAR(50), longitude VARCHAR(50), location_field_id VARCHAR(255),
        cliente_id INT, FOREIGN KEY (cliente_id) REFERENCES cliente(id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE os (
        id INT AUTO_INCREMENT PRIMARY KEY,
        tipo_servico VARCHAR(255), coluna_id INT, vendedor VARCHAR(255), data_fechamento DATETIME,
        modulos VARCHAR(255), inversor1 VARCHAR(500), inversor2 VARCHAR(500), inversor3 VARCHAR(500),
        valor VARCHAR(50), observacoes TEXT, acesso VARCHAR(255), isales_id VARCHAR(50) UNIQUE,
        field_id VARCHAR(255) NULL UNIQUE, criado_pelo_script BOOLEAN NULL DEFAULT FALSE,
        cliente_id INT, endereco_id INT,
        FOREIGN KEY (cliente_id) REFERENCES cliente(id), FOREIGN KEY (endereco_id) REFERENCES endereco(id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE os_status_historico (
        id INT AUTO_INCREMENT PRIMARY KEY,
        os_id INT, status VARCHAR(50), data_status DATETIME DEFAULT CURRENT_TIMESTAMP,
        observacao TEXT, enviado_field BOOLEAN DEFAULT FALSE,
        FOREIGN KEY (os_id) REFERENCES os(id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE pagamento (
        id INT AUTO_INCREMENT PRIMARY KEY,
        forma_pgto VARCHAR(255), responsavel_financiamento VARCHAR(255) NULL, valor_seguro VARCHAR(50),
        observacoes TEXT, os_id INT, FOREIGN KEY (os_id) REFERENCES os(id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
]

SQLITE_DDL = [
    statement.replace("INT AUTO_INCREMENT PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
    .replace(" ENGINE=InnoDB DEFAULT CHARSET=utf8", "")
    for statement in MYSQL_DDL
]

# Rows as the first version left them: text coordinates and money, 'ativo'/'cancelado', gaps in ids.
ROWS = [
    "INSERT INTO cliente (id, nome, doc_pessoal, email, telefone, telefone_secundario, field_id, criado_pelo_script) "
    "VALUES (7, 'Maria da Silva', '52998224725', 'maria@example.com', '11987654321', NULL, 'MTox', 1)",
    "INSERT INTO cliente (id, nome, doc_pessoal, email, telefone, telefone_secundario, field_id, criado_pelo_script) "
    "VALUES (9, 'Solar Agro Ltda', '11222333000181', NULL, '64999990000', '', NULL, 0)",
    "INSERT INTO endereco (id, cep, logradouro, numero, complemento, bairro, cidade, estado, link_localizacao, "
    "latitude, longitude, location_field_id, cliente_id) VALUES (11, '01310100', 'Avenida Paulista', '1000', 'ap 12', "
    "'Bela Vista', 'São Paulo', 'SP', 'https://maps.app.goo.gl/AbCdEf123', '-23.5614', '-46,6559', 'TG9jOjE=', 7)",
    "INSERT INTO endereco (id, cep, logradouro, numero, complemento, bairro, cidade, estado, link_localizacao, "
    "latitude, longitude, location_field_id, cliente_id) VALUES (12, '75900000', 'Rodovia GO-174, km 12', 's/n', NULL, "
    "'Zona Rural', 'Rio Verde', 'GO', '', 'sem coordenada', '', NULL, 9)",
    "INSERT INTO os (id, tipo_servico, coluna_id, vendedor, data_fechamento, modulos, inversor1, inversor2, inversor3, "
    "valor, observacoes, acesso, isales_id, field_id, criado_pelo_script, cliente_id, endereco_id) VALUES "
    "(21, 'U2VydjoxOjE=', 17840, 'João Souza', '2025-03-14 10:22:00', '12x Módulo 550W', 'Inversor 5kW', NULL, NULL, "
    "'45.900,00', 'Telhado cerâmico', 'Escada necessária', '4711', 'dGljazox', 1, 7, 11)",
    "INSERT INTO os (id, tipo_servico, coluna_id, vendedor, data_fechamento, modulos, inversor1, inversor2, inversor3, "
    "valor, observacoes, acesso, isales_id, field_id, criado_pelo_script, cliente_id, endereco_id) VALUES "
    "(22, NULL, 20363, 'Ana Lima', NULL, '80x Módulo 585W', 'Inversor 25kW', 'Inversor 20kW', NULL, "
    "'238500.5', NULL, NULL, '4712', NULL, 0, 9, 12)",
    "INSERT INTO os_status_historico (id, os_id, status, data_status, observacao, enviado_field) VALUES "
    "(31, 21, 'ativo', '2025-03-15 08:00:00', 'Aprovado', 1)",
    "INSERT INTO os_status_historico (id, os_id, status, data_status, observacao, enviado_field) VALUES "
    "(32, 22, 'ativo', '2025-04-02 08:00:00', 'Aprovado', 0)",
    "INSERT INTO os_status_historico (id, os_id, status, data_status, observacao, enviado_field) VALUES "
    "(33, 22, 'cancelado', '2025-04-10 08:00:00', 'Cancelado pelo cliente', 0)",
    "INSERT INTO pagamento (id, forma_pgto, responsavel_financiamento, valor_seguro, observacoes, os_id) VALUES "
    "(41, 'FINANCIAMENTO', 'Maria da Silva', 'R$ 890,00', 'Entrada de 10% + 60x', 21)",
    "INSERT INTO pagamento (id, forma_pgto, responsavel_financiamento, valor_seguro, observacoes, os_id) VALUES "
    "(42, 'À VISTA', NULL, '', NULL, 22)",
]


def create_legacy(engine: Engine) -> None:
    """Create the legacy tables and rows in the (empty) database of `engine`."""
    ddl = MYSQL_DDL if engine.dialect.name == "mysql" else SQLITE_DDL
    with engine.begin() as conn:
        for statement in ddl + ROWS:
            conn.execute(text(statement))
