"""The fixed task and topic labels of offline summaries, and the confident choice among them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

TASK_LABELS = (
    "Write, debug or explain code",
    "Explain a concept or answer a factual question",
    "Write or edit an essay, article or report",
    "Write a story, poem, song or other creative text",
    "Draft an email, letter or other professional message",
    "Solve a math, physics or other calculation problem",
    "Translate text between languages",
    "Summarise or rewrite a text",
    "Brainstorm ideas or names",
    "Give advice on a personal or relationship matter",
    "Plan a trip, event or schedule",
    "Recommend products, books, films or music",
    "Analyse data or build a spreadsheet",
    "Help with homework or study for an exam",
    "Give health, fitness or medical information",
    "Give legal or financial guidance",
    "Create marketing, sales or social media content",
    "Chat casually or role-play a character",
    "Find or book a hotel, restaurant, taxi or train",
    "Prepare a job application, resume or interview",
)
"""Tasks a conversation can ask of the assistant (after Clio's top-level request clusters)."""

TOPIC_LABELS = (
    "Software development",
    "Data science and machine learning",
    "Computers, hardware and networking",
    "Mathematics",
    "Natural sciences",
    "Health and medicine",
    "Business and finance",
    "Law and government",
    "Education and learning",
    "Writing and literature",
    "Arts, music and entertainment",
    "Games and sports",
    "Travel, hotels and transport",
    "Food and cooking",
    "Relationships and personal life",
    "Careers and work",
    "History, philosophy and religion",
    "Languages and translation",
    "Shopping and products",
    "Marketing and social media",
)
"""High-level topics (after Clio's facet examples and its top-level clusters)."""

LABEL_HINTS = {
    "Write, debug or explain code": "fix this error in my code; write a function or script; "
    "why does my program not work; implement a feature with a library, framework or API",
    "Explain a concept or answer a factual question": "what is; how does it work; explain "
    "the difference between; why does; tell me about",
    "Write or edit an essay, article or report": "write an essay, blog post or article "
    "about; improve my paragraph; proofread this report",
    "Write a story, poem, song or other creative text": "write a short story, poem, song "
    "lyrics, a script or a joke about",
    "Draft an email, letter or other professional message": "write an email to my boss or "
    "a client; draft a cover letter or a formal message",
    "Solve a math, physics or other calculation problem": "solve this equation; calculate "
    "the probability, interest or derivative; physics problem",
    "Translate text between languages": "translate this sentence into French, Spanish or "
    "English; what does this word mean in another language",
    "Summarise or rewrite a text": "summarise this text; rewrite or paraphrase it; make it "
    "shorter or more formal",
    "Brainstorm ideas or names": "give me ideas for; suggest names for; brainstorm",
    "Give advice on a personal or relationship matter": "my partner, friend or family; how "
    "do I deal with; I feel; relationship advice",
    "Plan a trip, event or schedule": "plan an itinerary, a party, a wedding or my week",
    "Recommend products, books, films or music": "recommend a good book, movie, song, "
    "laptop or phone; which should I buy",
    "Analyse data or build a spreadsheet": "analyse this dataset; Excel formula; SQL query; "
    "chart; statistics",
    "Help with homework or study for an exam": "homework question; exam preparation; "
    "explain this for my class; quiz me",
    "Give health, fitness or medical information": "symptoms; medication; diet; workout "
    "plan; is it healthy",
    "Give legal or financial guidance": "taxes; contract; is it legal; investing; loans; insurance",
    "Create marketing, sales or social media content": "write an ad, product description, "
    "slogan, SEO content or social media posts for my business",
    "Chat casually or role-play a character": "hi, how are you; let's chat; pretend you "
    "are; role-play a character",
    "Find or book a hotel, restaurant, taxi or train": "book a hotel room, a table, a taxi "
    "or a train ticket; find a restaurant",
    "Prepare a job application, resume or interview": "improve my resume or CV; interview "
    "questions; job application",
    "Software development": "programming, code, bugs, functions, libraries, web and app "
    "development",
    "Data science and machine learning": "data analysis, statistics, models, neural networks, "
    "training, datasets",
    "Computers, hardware and networking": "computer, laptop, operating system, network, "
    "server, installation, settings",
    "Mathematics": "equations, algebra, geometry, calculus, probability",
    "Natural sciences": "physics, chemistry, biology, astronomy, earth science",
    "Health and medicine": "symptoms, illness, treatment, nutrition, fitness, mental health",
    "Business and finance": "company, startup, sales, money, investing, taxes, accounting",
    "Law and government": "laws, rights, contracts, politics, regulations",
    "Education and learning": "school, university, courses, teaching, studying",
    "Writing and literature": "essays, stories, poems, books, authors, grammar",
    "Arts, music and entertainment": "music, films, television, painting, celebrities",
    "Games and sports": "video games, board games, football, sports teams, players",
    "Travel, hotels and transport": "trips, hotels, flights, trains, taxis, tourist places",
    "Food and cooking": "recipes, cooking, ingredients, restaurants, meals",
    "Relationships and personal life": "partner, dating, family, friends, feelings",
    "Careers and work": "jobs, resume, interviews, colleagues, career change",
    "History, philosophy and religion": "historical events, philosophers, religions, ethics",
    "Languages and translation": "translation, grammar of a foreign language, vocabulary",
    "Shopping and products": "buying products, prices, product comparison, reviews",
    "Marketing and social media": "advertising, branding, SEO, social media posts, content",
}
"""Example phrases embedded with each built-in label: a bare label sits far from requests."""


LABEL_TEMPERATURE = 0.05
"""Softmax temperature over cosine similarities to the labels (see confident_label)."""

MIN_LABEL_PROBABILITY = 0.6
"""A label is given only when its softmax probability reaches this; otherwise none.

Chosen on chatterbot-corpus's topic-like categories (the tuning set: 264 texts mapped to
these topics, MiniLM): the nearest label was right for 41%; at 0.05 / 0.6, 23% get a label
and 85% of those are right. Reported on other sets by bench/bench_quality_suite.py."""


def label_texts(labels: Sequence[str]) -> list[str]:
    """What is embedded for each label: the label and its example phrases, where it has them."""
    return [f"{lb}: {LABEL_HINTS[lb]}" if lb in LABEL_HINTS else lb for lb in labels]


def confident_label(
    vector: npt.NDArray[np.float32],
    label_vectors: npt.NDArray[np.float32],
    labels: Sequence[str],
    *,
    temperature: float = LABEL_TEMPERATURE,
    min_probability: float = MIN_LABEL_PROBABILITY,
) -> str | None:
    """The label nearest the vector when it clearly wins, else None.

    The similarities become probabilities by a softmax at `temperature`, so a label must beat
    its rivals by a margin, not merely come first: a conversation about nothing in the list
    gets no label rather than the least-bad one.

    Args:
        vector: Unit vector of the conversation.
        label_vectors: Unit vectors of the labels, row-aligned with labels.
        labels: The labels.
        temperature: Softmax temperature (smaller: a smaller margin suffices).
        min_probability: Probability the best label needs.

    Returns:
        The label, or None.
    """
    sims = (label_vectors @ vector).astype(np.float64)
    best = int(np.argmax(sims))
    weights = np.exp((sims - sims[best]) / temperature)
    if weights[best] / weights.sum() < min_probability:
        return None
    return labels[best]
