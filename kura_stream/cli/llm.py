"""`kura-stream llm start|stop|status`: the local OpenAI-compatible LLM server (llama.cpp)."""

from __future__ import annotations

import json

import typer

from kura_stream.adapters.llm_server import LLMServerConfig, LocalLLMServer, ModelIntegrityError
from kura_stream.adapters.processes import ServiceError
from kura_stream.settings import Settings

app = typer.Typer(no_args_is_help=True)


def _server() -> LocalLLMServer:
    return LocalLLMServer(LLMServerConfig.from_settings(Settings()))


@app.command()
def start(
    timeout: float = typer.Option(120.0, help="Seconds to wait for the server to answer."),
) -> None:
    """Fetch and verify the model (first use), start the server, print its base URL."""
    server = _server()
    try:
        status = server.start(timeout_s=timeout)
    except (ServiceError, ModelIntegrityError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"LLM server running as PID {status.pid}, model {status.alias!r}")
    typer.echo(status.base_url)


@app.command()
def stop() -> None:
    """Stop the server by its PID; it is fine if none runs."""
    server = _server()
    if server.stop():
        typer.echo(f"LLM server on {server.config.base_url} stopped")
    else:
        typer.echo("LLM server was not running")


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Say whether the server runs and answers. Exit 0 ready, 1 not running, 2 not answering."""
    state = _server().status()
    if as_json:
        typer.echo(json.dumps(state.to_dict()))
    elif not state.running:
        typer.echo(f"LLM server is not running ({state.base_url})")
    else:
        answers = "answers" if state.ready else "does NOT answer"
        typer.echo(
            f"LLM server running as PID {state.pid} on {state.base_url}, "
            f"model {state.alias!r}; {answers}"
        )
    if not state.running:
        raise typer.Exit(1)
    if not state.ready:
        raise typer.Exit(2)
