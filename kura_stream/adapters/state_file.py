"""The assigner's state saved beside an embedded store at a clean shutdown, read once.

`<store>/assigner-state.npz` holds the state's arrays (no pickle) and the duplicates count;
`<store>/assigner-state.json` a format version and the fingerprint of the store and settings
it was saved for. A start-up that finds both, matching, skips reading every stored vector.
The files are deleted as they are read, matching or not, so that a crash later can never
reuse a state the store has moved past: the next start rebuilds from the store.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kura_stream.stages.assign_state import ClusterState
from kura_stream.stages.assign_state_arrays import state_arrays, state_from_arrays

logger = logging.getLogger(__name__)

FORMAT = 1
_STEM = "assigner-state"


class StateFile:
    """The saved state of the assigner over the embedded store at folder."""

    def __init__(self, folder: Path) -> None:
        """Name the files in folder (the store's)."""
        self.arrays = folder / f"{_STEM}.npz"
        self.header = folder / f"{_STEM}.json"

    def save(self, state: ClusterState, duplicates: int, fingerprint: Mapping[str, object]) -> None:
        """Write the state; the header last, so a half-written save is never read.

        A failure is logged, not raised: the next start rebuilds from the store.
        """
        try:
            self._write(state, duplicates, fingerprint)
        except OSError as exc:
            logger.warning("cannot save the assigner state (%s): the next start rebuilds", exc)
            self.discard()

    def _write(
        self, state: ClusterState, duplicates: int, fingerprint: Mapping[str, object]
    ) -> None:
        self.discard()
        arrays = state_arrays(state)
        arrays["duplicates"] = np.array(duplicates, np.int64)
        partial = self.arrays.with_suffix(".tmp.npz")
        with open(partial, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.arrays)
        header = {"format": FORMAT, "fingerprint": dict(fingerprint)}
        self.header.write_text(json.dumps(header, sort_keys=True), encoding="utf-8")
        logger.info("saved the assigner's state for a clean restart: %s", self.arrays)

    def take(self, fingerprint: Mapping[str, object]) -> tuple[ClusterState, int] | None:
        """The saved state and duplicates count if they match fingerprint; the files go.

        None (logged in one line) where there is none, or it does not match or cannot be read.
        """
        if not self.header.exists():
            self.discard()
            return None
        try:
            header = json.loads(self.header.read_text(encoding="utf-8"))
            expected = {"format": FORMAT, "fingerprint": json.loads(json.dumps(fingerprint))}
            if header != expected:
                logger.info("saved assigner state %s does not fit %s: rebuilding", header, expected)
                return None
            with np.load(self.arrays, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
            duplicates = int(arrays.pop("duplicates"))
            state = state_from_arrays(arrays)
            logger.info("resuming the assigner's state saved at a clean shutdown")
            return state, duplicates
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("cannot read the saved assigner state (%s): rebuilding", exc)
            return None
        finally:
            self.discard()

    def discard(self) -> None:
        """Delete the saved state, if any (the header first: without it nothing is read)."""
        partial = self.arrays.with_suffix(".tmp.npz")
        if not any(p.exists() for p in (self.header, self.arrays, partial)):
            return
        for path in (self.header, self.arrays, partial):
            path.unlink(missing_ok=True)
        folder = os.open(self.header.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the deletion survives a power cut, not only a crash
        finally:
            os.close(folder)


def state_file_for(store: object) -> StateFile | None:
    """Where a clean shutdown saves the assigner's state: beside an embedded store only."""
    from kura_stream.adapters.edge_store import EdgeClusterStore

    return StateFile(store.path) if isinstance(store, EdgeClusterStore) else None
