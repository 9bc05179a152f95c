"""Command line: `python -m sandbox serve` starts every simulator on one port and prints the .env."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence

from .core import DEFAULT_KEY, DEFAULT_TOKEN, Sandbox
from .state import StateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Simuladores locais de iSales, FieldControl, Nominatim, Google Geocoding e "
                    "encurtador de links, com estado e falhas injetáveis.")
    commands = parser.add_subparsers(dest="comando", metavar="COMANDO", required=True)
    serve = commands.add_parser(
        "serve", help="inicia os simuladores e imprime as linhas do .env",
        description="Inicia todos os simuladores em uma porta, imprime no stdout as linhas do .env "
                    "e atende até Ctrl-C ou SIGTERM. Controle em /_sandbox/ (ex.: /_sandbox/health).")
    serve.add_argument("--host", default="127.0.0.1", help="endereço de escuta (padrão: %(default)s)")
    serve.add_argument("--port", type=int, default=8765,
                       help="porta (padrão: %(default)s; 0 = uma porta livre, mostrada na saída)")
    serve.add_argument("--projetos", type=int, default=200, help="projetos gerados no iSales (padrão: %(default)s)")
    serve.add_argument("--seed", type=int, default=7, help="semente dos dados gerados (padrão: %(default)s)")
    serve.add_argument("--paginado", action="store_true",
                       help="o funil do iSales responde no formato paginado do Laravel (100 por página)")
    serve.add_argument("--fc-rps", type=float, default=1.0,
                       help="limite do FieldControl em requisições/s por chave (padrão: %(default)s, o real)")
    serve.add_argument("--fc-retry-after", action="store_true",
                       help="envia Retry-After nos 429 do FieldControl (o contrato não documenta)")
    serve.add_argument("--isales-rpm", type=int, default=60,
                       help="limite do iSales em requisições/minuto por token (padrão: %(default)s)")
    serve.add_argument("--nominatim-rps", type=float, default=1.0,
                       help="limite do Nominatim em requisições/s (padrão: %(default)s, a política do OSM)")
    serve.add_argument("--google-rps", type=float, default=50.0,
                       help="limite do Google Geocoding em requisições/s (padrão: %(default)s)")
    for name, system in (("isales", "iSales"), ("fc", "FieldControl"), ("geo", "geocodificadores e links")):
        serve.add_argument(f"--latencia-{name}-ms", type=float, default=0.0, metavar="MS",
                           help=f"atraso adicionado a cada resposta do {system} (padrão: 0)")
    serve.add_argument("--token", default=DEFAULT_TOKEN, help="token do iSales aceito (padrão: %(default)s)")
    serve.add_argument("--chave", default=DEFAULT_KEY, help="chave do FieldControl aceita (padrão: %(default)s)")
    serve.add_argument("--estado", metavar="ARQUIVO",
                       help="arquivo JSON de estado: carregado ao iniciar se existir, salvo a cada alteração")
    serve.add_argument("--cliente-inexistente", choices=("404", "null"), default="404",
                       help="resposta do iSales para cliente_id desconhecido (padrão: %(default)s)")
    serve.add_argument("--hoje", metavar="AAAA-MM-DD",
                       help="data de referência das datas geradas (padrão: hoje)")
    serve.add_argument("-v", "--verbose", action="store_true", help="mostra cada requisição no stderr")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as cleanly as Ctrl-C


def serve(args: argparse.Namespace) -> int:
    latency = {"isales": args.latencia_isales_ms, "fieldcontrol": args.latencia_fc_ms, "geo": args.latencia_geo_ms}
    try:
        sandbox = Sandbox(args.projetos, args.seed, host=args.host, port=args.port, paginado=args.paginado,
                          fc_rps=args.fc_rps, isales_rpm=args.isales_rpm, nominatim_rps=args.nominatim_rps,
                          google_rps=args.google_rps, latency_ms={k: v for k, v in latency.items() if v},
                          token=args.token, chave=args.chave, estado=args.estado,
                          cliente_inexistente=args.cliente_inexistente, fc_retry_after=args.fc_retry_after,
                          hoje=args.hoje, verbose=args.verbose)
    except (StateError, ValueError) as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    try:
        sandbox.start()
    except OSError as exc:
        print(f"erro: não foi possível escutar em {args.host}:{args.port} ({exc.strerror or exc}); "
              "use --port 0 para uma porta livre", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    for name, value in sandbox.env().items():
        print(f"{name}={value}")
    sys.stdout.flush()
    origem = f"estado carregado de {args.estado}" if sandbox.loaded_from_file else (
        f"{args.projetos} projetos gerados com a semente {args.seed}")
    print(f"Sandbox ouvindo em {sandbox.url} ({origem}); FieldControl limitado a {args.fc_rps:g} req/s "
          f"por chave (o real permite 1 req/s). Ctrl-C para parar.", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    sandbox.stop()
    print("Sandbox encerrado.", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.comando == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
