"""`python -m tests.integration.crash_hooks serve ...`: the CLI, dying at a chosen point.

KURA_TEST_CRASH_AFTER_STORE=N: the process ends at once (os._exit, no shutdown, no commit, as
SIGKILL would) right after the assigner has written its Nth batch to the store and before
anything of that batch is published: the window in which a crash used to lose assignments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kura_stream.cli import main
from kura_stream.service.assigner import AssignBatch, Assigner
from kura_stream.types import EmbeddedConversation

_CRASH_AFTER = int(os.environ.get("KURA_TEST_CRASH_AFTER_STORE", "0"))
_stored_batches = [0]
_original = Assigner.process


def _process_then_die(
    self: Assigner,
    items: Sequence[EmbeddedConversation],
    sources: Sequence[str | None] | None = None,
) -> AssignBatch:
    batch = _original(self, items, sources)
    if batch.assignments:
        _stored_batches[0] += 1
        if _stored_batches[0] == _CRASH_AFTER:
            os._exit(137)
    return batch


if _CRASH_AFTER:
    Assigner.process = _process_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
