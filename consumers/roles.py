"""What one `kura-stream serve` process runs: its role, or the consumers (parts) it names.

A deployment grows by running more ingest processes (`--role ingest`), up to the
conversations topic's partitions, beside exactly one assign process (`--role assign`):

- ingest: the summarise + embed consumer only. It never opens the store, so several run
  beside the process that holds the embedded store; it serves /health and /metrics.
- assign: the assign, name and commands consumers, the recompute scheduler and the whole
  HTTP API over the store. Recompute is part of it: a recompute rewrites the clusters that
  the assigner keeps in memory and then reloads the assigner, under the assigner's write
  lock, so it must run in the assigner's process, whatever the store.
- all: everything in one process (the default; the embedded store's simplest deployment).
"""

from __future__ import annotations

from collections.abc import Collection

PARTS = ("summarise", "assign", "name", "commands")
"""The consumers `serve` can run; `--parts` picks some of them (a role picks for you)."""
STORELESS_PARTS = frozenset({"summarise"})
"""Parts that never touch the store: a process running only these does not open it."""
ROLES: dict[str, tuple[str, ...]] = {
    "ingest": ("summarise",),
    "assign": ("assign", "name", "commands"),
    "all": PARTS,
}
"""Each role's consumers."""
NOT_A_ROLE = {
    "recompute": (
        "recompute is not a process of its own: a recompute rewrites the clusters the assigner "
        "keeps in memory and reloads it under the assigner's write lock, so it runs in the "
        "assign process (--role assign includes the commands consumer and the scheduler)"
    ),
}
"""Role names someone may try, and why they are refused."""


class RoleError(ValueError):
    """A role or a list of parts that `serve` cannot run."""


def parts_for(role: str | None = None, parts: str | None = None) -> tuple[str, ...]:
    """The consumers one process runs, from `--role` or `--parts` (not both).

    Args:
        role: ingest, assign or all; None: all, unless parts are given.
        parts: Comma-separated consumers, from PARTS.

    Raises:
        RoleError: an unknown role or part, no part, or both a role and parts.
    """
    if parts is not None:
        if role not in (None, "all"):
            raise RoleError(f"give --role or --parts, not both (--role {role}, --parts {parts})")
        return check_parts([p.strip() for p in parts.split(",") if p.strip()])
    role = "all" if role is None else role.strip().lower()
    if role in NOT_A_ROLE:
        raise RoleError(f"{NOT_A_ROLE[role]}; choose from {', '.join(ROLES)}")
    if role not in ROLES:
        raise RoleError(f"unknown role {role[:40]!r}; choose from {', '.join(ROLES)}")
    return ROLES[role]


def check_parts(parts: Collection[str]) -> tuple[str, ...]:
    """The parts, in PARTS order, once each.

    Raises:
        RoleError: an unknown part, or none at all.
    """
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise RoleError(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    if not parts:
        raise RoleError(f"no parts to run; choose from {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in parts)


def opens_store(parts: Collection[str]) -> bool:
    """Whether a process running these parts opens the store (all but ingest-only ones do)."""
    return not set(parts) <= STORELESS_PARTS
