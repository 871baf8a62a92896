"""`kura-stream broker start|stop|status`: the local Apache Kafka broker (KRaft, 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from kura_stream.adapters.kafka_server import BrokerConfig, LocalKafkaServer
from kura_stream.adapters.processes import ServiceError
from kura_stream.settings import Settings

app = typer.Typer(no_args_is_help=True)

_PORT = typer.Option(None, "--port", help="PLAINTEXT port [default: from KURA_KAFKA_BOOTSTRAP].")
_DATA_DIR = typer.Option(None, "--data-dir", help="Broker data folder [default: <data_dir>/kafka].")


def _broker(port: int | None, data_dir: Path | None) -> LocalKafkaServer:
    try:
        return LocalKafkaServer(
            BrokerConfig.from_settings(Settings(), port=port, data_dir=data_dir)
        )
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


@app.command()
def start(
    port: int | None = _PORT,
    data_dir: Path | None = _DATA_DIR,
    timeout: float = typer.Option(90.0, help="Seconds to wait for the broker to answer."),
) -> None:
    """Start the broker (fetching its jars on first use) and wait until it answers."""
    broker = _broker(port, data_dir)
    try:
        status = broker.start(timeout_s=timeout)
    except ServiceError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"Kafka {status.version} running as PID {status.pid}")
    typer.echo(status.bootstrap)


@app.command()
def stop(port: int | None = _PORT, data_dir: Path | None = _DATA_DIR) -> None:
    """Stop the broker by its PID; it is fine if none runs."""
    broker = _broker(port, data_dir)
    if broker.stop():
        typer.echo(f"Kafka on {broker.bootstrap} stopped")
    else:
        typer.echo("Kafka was not running")


@app.command()
def status(
    port: int | None = _PORT,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Say whether the broker runs and answers. Exit 0 ready, 1 not running, 2 not answering."""
    state = _broker(port, data_dir).status()
    if as_json:
        typer.echo(json.dumps(state.to_dict()))
    elif not state.running:
        typer.echo(f"Kafka is not running ({state.bootstrap})")
    else:
        answers = "answers" if state.ready else "does NOT answer"
        typer.echo(
            f"Kafka {state.version} running as PID {state.pid} on {state.bootstrap}; {answers}"
        )
    if not state.running:
        raise typer.Exit(1)
    if not state.ready:
        raise typer.Exit(2)
