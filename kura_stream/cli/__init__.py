"""The `kura-stream` command line."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from kura_stream.cli import batch, broker, demo, llm, models, service
from kura_stream.cli.tui import tui
from kura_stream.logs import configure_logging
from kura_stream.settings import Settings

app = typer.Typer(
    name="kura-stream",
    help="Continuous, Clio-style insight into what people ask chatbots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(broker.app, name="broker", help="The local Apache Kafka broker (KRaft, 127.0.0.1).")
app.add_typer(llm.app, name="llm", help="The local OpenAI-compatible LLM server (llama.cpp).")
app.add_typer(models.app, name="models", help="Local embedding models: fetch, distil, check.")
app.command("demo")(demo.demo)
app.command("batch")(batch.batch)
app.command("tui")(tui)
for command in service.app.registered_commands:
    app.registered_commands.append(command)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    try:
        settings = Settings()
    except ValidationError as err:
        typer.echo(f"error: invalid KURA_* setting:\n{err}", err=True)
        raise typer.Exit(2) from err
    configure_logging(verbose=verbose, fmt=settings.log_format)


def main() -> None:
    """Entry point of the `kura-stream` script."""
    app()
