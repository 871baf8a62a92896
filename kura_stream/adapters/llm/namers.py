"""LLMClusterNamer and LLMParentNamer: Clio's naming prompts, asked through instructor."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import instructor

from kura_stream.adapters.llm.calls import LLMCallError, RetryPolicy, structured_call
from kura_stream.protocols import ClusterNamer
from kura_stream.stages.label_checks import name_problem
from kura_stream.stages.llm_namers import (
    CLUSTER_INSTRUCTION_TOKENS,
    PARENT_INSTRUCTION_TOKENS,
    NamingError,
    candidate_names,
    choice_prompt,
    cluster_prompt,
    parent_children,
    to_label,
)
from kura_stream.stages.offline_namer import OfflineClusterNamer
from kura_stream.stages.prompts import (
    CLUSTER_VERSION,
    META_VERSION,
    CandidateNames,
    GeneratedLabel,
    propose_messages,
    reask_messages,
    rename_messages,
)
from kura_stream.types import SCHEMA_VERSION, ClusterLabel, Summary

logger = logging.getLogger(__name__)


class _LLMNamer:
    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_prompt_tokens: int,
        max_item_tokens: int,
        max_output_tokens: int,
        temperature: float,
        retry: RetryPolicy | None,
    ) -> None:
        if max_prompt_tokens < 200 or max_item_tokens < 8:
            raise ValueError("max_prompt_tokens must be >= 200 and max_item_tokens >= 8")
        self._client = client
        self.model = model
        self.max_prompt_tokens = max_prompt_tokens
        self.max_item_tokens = max_item_tokens
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.retry = retry or RetryPolicy()

    async def _ask(self, model: type[Any], messages: list[dict[str, str]], what: str) -> Any:
        try:
            return await structured_call(
                self._client,
                model,
                messages,
                model=self.model,
                policy=self.retry,
                temperature=self.temperature,
                max_tokens=self.max_output_tokens,
                what=what,
            )
        except LLMCallError as exc:
            raise NamingError(exc.reason) from exc


class LLMClusterNamer(_LLMNamer):
    """Implements ClusterNamer with Clio's contrastive prompt (Kura's cluster.py).

    The prompt is bounded twice over: each statement is cut to `max_item_tokens`, and the
    statements shown stop at a budget (`max_prompt_tokens` less the instructions), 60% for
    members and 40% for contrast, whatever the caller passes in. A name longer than ten
    words or generic ("Miscellaneous", "General questions") is re-asked once with the
    reason; if the second is no better, the fallback namer (offline) names the cluster.
    """

    INSTRUCTION_TOKENS: ClassVar[int] = CLUSTER_INSTRUCTION_TOKENS
    """Estimated tokens of the instructions and the tool schema, outside the examples."""

    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_members: int = 50,
        max_contrast: int = 50,
        max_prompt_tokens: int = 3000,
        max_item_tokens: int = 60,
        max_output_tokens: int = 300,
        temperature: float = 0.2,
        retry: RetryPolicy | None = None,
        fallback: ClusterNamer | None = None,
    ) -> None:
        """Create the namer.

        Args:
            client: An async instructor client.
            model: Model name sent with each request; part of `name`.
            max_members: Members shown at most (Clio: 50).
            max_contrast: Nearest non-members shown at most (Clio: 50).
            max_prompt_tokens: Budget of the whole prompt, estimated tokens; keep it under
                the model's context less max_output_tokens.
            max_item_tokens: Each statement is cut to this many tokens.
            max_output_tokens: Ceiling on generated tokens.
            temperature: Sampling temperature.
            retry: Retry policy.
            fallback: Names a cluster whose name is still too long or generic after one
                re-ask (default: the OfflineClusterNamer).
        """
        super().__init__(
            client,
            model=model,
            max_prompt_tokens=max_prompt_tokens,
            max_item_tokens=max_item_tokens,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            retry=retry,
        )
        self.max_members = max_members
        self.max_contrast = max_contrast
        self.fallback = fallback if fallback is not None else OfflineClusterNamer()

    @property
    def name(self) -> str:
        """llm:<model>:<prompt version>:<bounds>:s<schema version>+<fallback namer>."""
        bounds = f"{self.max_members}+{self.max_contrast}x{self.max_item_tokens}"
        own = f"llm:{self.model}:{CLUSTER_VERSION}:{bounds}:s{SCHEMA_VERSION}"
        return f"{own}+{self.fallback.name}"

    def build_messages(
        self, members: Sequence[Summary], contrast: Sequence[Summary]
    ) -> list[dict[str, str]]:
        """The bounded prompt for one cluster (first members and contrast are kept first)."""
        return cluster_prompt(
            members,
            contrast,
            max_members=self.max_members,
            max_contrast=self.max_contrast,
            max_item_tokens=self.max_item_tokens,
            budget=self.max_prompt_tokens - self.INSTRUCTION_TOKENS,
        )

    async def label(self, members: Sequence[Summary], contrast: Sequence[Summary]) -> ClusterLabel:
        """Name the group `members`, distinguishing it from `contrast`.

        Raises:
            NamingError: no valid answer after retries.
            ValueError: members is empty.
        """
        if not members:
            raise ValueError("cannot name an empty group")
        messages = self.build_messages(members, contrast)
        out: GeneratedLabel = await self._ask(GeneratedLabel, messages, "cluster name")
        label = to_label(out)
        problem = name_problem(label.name)
        if problem is None:
            return label
        logger.info("cluster name %r refused (%s); asking again", label.name, problem)
        again = reask_messages(messages, out.model_dump_json(), label.name, problem)
        try:
            label = to_label(await self._ask(GeneratedLabel, again, "cluster name, re-asked"))
            problem = name_problem(label.name)
        except NamingError as exc:
            problem = exc.reason
        if problem is None:
            return label
        logger.warning("cluster name refused again (%s); using %s", problem, self.fallback.name)
        return await self.fallback.label(members, contrast)


class LLMParentNamer(_LLMNamer):
    """Implements ParentNamer with Clio's meta-clustering prompts (Kura's meta_cluster.py).

    Children are shown as "name: description", each cut to `max_item_tokens`, as many as fit
    `max_prompt_tokens` (largest first is the caller's order). Candidates are offered in a
    shuffled order (Clio: avoids a bias to the first), seeded by the child so runs repeat.
    """

    INSTRUCTION_TOKENS: ClassVar[int] = PARENT_INSTRUCTION_TOKENS

    def __init__(
        self,
        client: instructor.AsyncInstructor,
        *,
        model: str,
        max_children: int = 40,
        max_prompt_tokens: int = 3000,
        max_item_tokens: int = 50,
        max_output_tokens: int = 400,
        temperature: float = 0.2,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Create the namer.

        Args:
            client: An async instructor client.
            model: Model name sent with each request; part of `name`.
            max_children: Children shown at most per prompt (Clio's neighbourhoods: ~40).
            max_prompt_tokens: Budget of the whole prompt, estimated tokens.
            max_item_tokens: Each child's "name: description" is cut to this many tokens.
            max_output_tokens: Ceiling on generated tokens.
            temperature: Sampling temperature.
            retry: Retry policy.
        """
        super().__init__(
            client,
            model=model,
            max_prompt_tokens=max_prompt_tokens,
            max_item_tokens=max_item_tokens,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            retry=retry,
        )
        self.max_children = max_children

    @property
    def name(self) -> str:
        """llm:<model>:<prompt version>:<bounds>:s<schema version>."""
        bounds = f"{self.max_children}x{self.max_item_tokens}"
        return f"llm:{self.model}:{META_VERSION}:{bounds}:s{SCHEMA_VERSION}"

    def _children(self, children: Sequence[ClusterLabel]) -> list[str]:
        return parent_children(
            children,
            max_children=self.max_children,
            max_item_tokens=self.max_item_tokens,
            budget=self.max_prompt_tokens - self.INSTRUCTION_TOKENS,
        )

    async def propose_parents(self, children: Sequence[ClusterLabel], desired: int) -> list[str]:
        """Candidate parent names for a neighbourhood: between desired/2 and 1.5 x desired.

        Raises:
            NamingError: no valid answer after retries.
        """
        desired = max(1, desired)
        messages = propose_messages(self._children(children), desired)
        out: CandidateNames = await self._ask(CandidateNames, messages, "parent proposals")
        return candidate_names(out, desired)

    async def choose_parent(self, child: ClusterLabel, candidates: Sequence[str]) -> str:
        """The candidate that best fits child, returned exactly as given.

        Raises:
            NamingError: no valid answer after retries (an answer not among the candidates is
                re-asked with the list).
            ValueError: candidates is empty.
        """
        if not candidates:
            raise ValueError("no candidates to choose from")
        model, messages = choice_prompt(child, candidates, self.max_item_tokens * 2)
        out = await self._ask(model, messages, f"parent of {child.name!r}")
        return str(out.higher_level_cluster)

    async def label_parent(self, children: Sequence[ClusterLabel]) -> ClusterLabel:
        """A name and description for a parent, from the children it received.

        Raises:
            NamingError: no valid answer after retries.
            ValueError: children is empty.
        """
        if not children:
            raise ValueError("a parent needs children")
        messages = rename_messages(self._children(children))
        out: GeneratedLabel = await self._ask(GeneratedLabel, messages, "parent name")
        return to_label(out)
