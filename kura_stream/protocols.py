"""The replaceable parts of kura-stream, as Protocols: each has one shared contract test suite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from kura_stream.records import ClusterPoint, ConversationPoint, Hit, Vector
from kura_stream.types import ClusterLabel, Conversation, Summary


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors."""

    @property
    def name(self) -> str:
        """A stable identity of the model (goes into cache keys)."""
        ...

    @property
    def dim(self) -> int:
        """Length of every vector it returns."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts.

        Args:
            texts: The texts, any number (including none).

        Returns:
            A float32 array of shape (len(texts), dim), each row of unit length.
        """
        ...


@runtime_checkable
class ClusterStore(Protocol):
    """Holds conversations (vector + payload) and clusters (centroid + ClusterMeta).

    Writes are idempotent by key (chat_id, cluster_id): writing the same key twice keeps one
    record, the latest. A write returns only once it is durable for that implementation.
    """

    @property
    def dim(self) -> int:
        """Vector length of both collections."""
        ...

    def upsert_conversations(self, points: Sequence[ConversationPoint]) -> None:
        """Insert or replace conversations by chat_id."""
        ...

    def get_conversations(self, chat_ids: Sequence[str]) -> list[ConversationPoint]:
        """The stored conversations among chat_ids (missing ids are left out), in input order."""
        ...

    def delete_conversations(self, chat_ids: Sequence[str]) -> None:
        """Delete conversations by chat_id; unknown ids are ignored."""
        ...

    def count_conversations(self, cluster_id: str | None = None) -> int:
        """Exact number of conversations, all of them or those in one cluster."""
        ...

    def iter_conversations(self, batch_size: int = 1000) -> Iterator[list[ConversationPoint]]:
        """Every stored conversation with its vector, in batches."""
        ...

    def conversations_in_cluster(self, cluster_id: str, limit: int) -> list[ConversationPoint]:
        """Up to limit conversations whose cluster_id is cluster_id."""
        ...

    def search_conversations(
        self, vector: Vector, limit: int, cluster_id: str | None = None
    ) -> list[Hit]:
        """Nearest conversations by cosine similarity, best first, optionally in one cluster."""
        ...

    def upsert_clusters(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters by cluster_id."""
        ...

    def get_clusters(self, cluster_ids: Sequence[str]) -> list[ClusterPoint]:
        """The stored clusters among cluster_ids (missing ids left out), in input order."""
        ...

    def list_clusters(self) -> list[ClusterPoint]:
        """Every stored cluster."""
        ...

    def delete_clusters(self, cluster_ids: Sequence[str]) -> None:
        """Delete clusters by cluster_id; unknown ids are ignored."""
        ...

    def search_clusters(self, vector: Vector, limit: int) -> list[Hit]:
        """Nearest clusters by cosine similarity of their centroids, best first."""
        ...

    def close(self) -> None:
        """Flush and release the store; further calls are errors."""
        ...


@runtime_checkable
class Summariser(Protocol):
    """Turns one conversation into Clio's facets."""

    @property
    def name(self) -> str:
        """Identity of the summariser, model and prompt version (goes into cache keys)."""
        ...

    async def summarise(self, conversation: Conversation) -> Summary:
        """Summarise one conversation.

        Raises:
            SummaryError: the conversation could not be summarised (after retries); the
                stage turns it into a dead letter with the reason.
        """
        ...


@runtime_checkable
class BoundsOwnCalls(Protocol):
    """A summariser that bounds its own calls in flight (the LLM one: a slot per attempt)."""

    @property
    def call_window(self) -> int | None:
        """Conversations worth summarising at once; None: the caller's concurrency bounds."""
        ...


@runtime_checkable
class BatchSummariser(Protocol):
    """A summariser that does a whole batch at once (the offline one: one embedder call)."""

    async def summarise_batch(self, conversations: Sequence[Conversation]) -> list[Summary]:
        """Summarise many; never fails on content."""
        ...


@runtime_checkable
class WarmsUp(Protocol):
    """Something with a slow first call that can be paid before traffic arrives."""

    def warm_up(self) -> None:
        """Load models and caches now."""
        ...


@runtime_checkable
class Closeable(Protocol):
    """Something holding a process or connection that must be released."""

    def close(self) -> None:
        """Release it; further calls are errors."""
        ...


@runtime_checkable
class ClusterNamer(Protocol):
    """Names a base cluster from a sample of its members and of its nearest non-members."""

    @property
    def name(self) -> str:
        """Identity of the namer (model, prompt version)."""
        ...

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        """Name the group `members`, distinguishing it from `contrast` (Clio's contrastive set).

        Both samples are bounded by the caller, whatever the cluster's size.
        """
        ...


@runtime_checkable
class ParentNamer(Protocol):
    """The naming steps of Clio's meta-clustering, one level up at a time."""

    @property
    def name(self) -> str:
        """Identity of the namer (model, prompt version)."""
        ...

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        """Candidate parent names for a neighbourhood of clusters (about `desired` of them)."""
        ...

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        """The candidate that best fits child; the caller rejects anything not in candidates."""
        ...

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        """A final name and description for a parent, from the children it received."""
        ...


@runtime_checkable
class Projector(Protocol):
    """Places vectors on a 2-D map; new points are placed without refitting."""

    def fit_transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fit the map on vectors and return their (n, 2) positions."""
        ...

    def transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Positions of new vectors on the fitted map, (m, 2)."""
        ...
