#!/usr/bin/env python3
"""Passo 02: normaliza e valida os projetos buscados pelo passo 01 e encontra as coordenadas de cada endereço.

Lê data/01_projetos_isales.json e grava data/02_projetos_tratados.json. CPF/CNPJ (inclusive o CNPJ
alfanumérico), telefones, CEP, UF, e-mail, valores e datas são conferidos; um valor descartado vira
um aviso no projeto. Coordenadas: do link do mapa (links curtos seguidos um redirecionamento por vez),
senão do endereço pelo geocodificador (GEOCODER=nominatim ou google), senão só do CEP (precisão baixa).
Toda resposta do geocodificador fica em cache no banco: uma segunda execução não repete consultas.
Documento inválido ou projeto sem coordenadas vira pendência (data/pendencias.json), tentada de novo
na próxima execução.
"""

import sys

from lib import cli
from lib.config import TreatSettings
from lib.run import run_step
from lib.steps import treat


def main(argv: list[str] | None = None) -> int:
    args = cli.parser("02_tratar_dados_clientes.py", __doc__).parse_args(argv)
    return run_step("02", args, treat.run, TreatSettings)


if __name__ == "__main__":
    sys.exit(main())
