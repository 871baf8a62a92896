"""Consumer: commands (recompute, rename) -> full recompute or rename -> cluster events.

A recompute command's offset is committed only when its recompute has finished (completed
or failed), so a service that dies during one runs it again when it comes back. The
recompute itself, its schedule and renames are the service's `Recomputer`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from faststream import Context
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from consumers._raw import raw_router, records_of
from kura_stream.service.metrics import ServiceMetrics
from kura_stream.service.outputs import Outputs
from kura_stream.service.recompute_runner import Recomputer
from kura_stream.settings import KafkaSettings
from kura_stream.types import Command, DeadLetter

logger = logging.getLogger(__name__)

RECOMPUTE_MAX_S = 3600
"""Longest a recompute may run inside the command handler before the consumer group drops
the consumer (its max poll interval)."""


async def on_command(
    msg: KafkaMessage,
    recomputer: Annotated[Recomputer, Context("recomputer")],
    outputs: Annotated[Outputs, Context("outputs")],
    metrics: Annotated[ServiceMetrics, Context("metrics")],
) -> None:
    """Run a recompute (committed when it has finished) or a rename; a bad command dies."""
    record = records_of(msg)[0]
    try:
        command = Command.model_validate_json(record.value or b"")
    except (ValidationError, RecursionError, ValueError) as err:
        reason = f"invalid command: {err!r}"[:300]
        logger.warning("dead letter at commands (offset %s): %s", record.offset, reason)
        dead = DeadLetter.from_record(
            record.value,
            reason=reason,
            stage="commands",
            key=record.key,
            source=f"{record.topic}/{record.partition}/{record.offset}",
        )
        await outputs.dead_letters([dead])
        metrics.note_dead_letters([dead])
        return
    if command.kind == "recompute":
        await recomputer.run(command.request_id)
    elif command.cluster_id and command.name:
        await recomputer.rename(command.cluster_id, command.name)


def router(kafka: KafkaSettings) -> KafkaRouter:
    """The commands consumer (one partition; a new group starts at the log end)."""
    routes = raw_router()
    routes.subscriber(
        kafka.topic_commands,
        group_id=f"{kafka.group_id}-commands",
        auto_offset_reset="latest",
        ack_policy=AckPolicy.ACK,
        max_poll_interval_ms=RECOMPUTE_MAX_S * 1000,
    )(on_command)
    return routes


def context() -> dict[str, object]:
    """Nothing: the commands consumer keeps no state between commands."""
    return {}
