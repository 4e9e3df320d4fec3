"""BM25 over short texts (bm25s): the offline router's profiles and the passages of a specialist's knowledge.

Tokens are lower-cased words with English stop words removed and a light suffix stemmer, so "scheduling",
"schedules" and "scheduled" meet. Phrases (keywords like "do not call") are also indexed as joined bigrams.

Building an index is CPU work (about 15 ms for 50,000 characters of knowledge): callers run it in a thread,
and a knowledge text's passage index is cached (`passage_index`).
"""

from __future__ import annotations

import functools
import logging
import re

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "hi",
        "hello",
        "please",
        "thanks",
        "thank",
        "hey",
        "i'm",
        "i've",
        "i'd",
        "can't",
        "don't",
        "it's",
        "we're",
        "you're",
        "what's",
        "let's",
        "get",
        "got",
        "also",
        "much",
        "many",
        "one",
        "ok",
        "okay",
        "us",
        "want",
        "need",
        "know",
        "like",
        "tell",
        "help",
        "question",
        "ask",
        "would",
        "could",
        "really",
    ]
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "ed", "es", "s")


def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def tokenize(text: str) -> list[str]:
    """Stemmed content words, then each adjacent pair joined ("call_record"), which rewards matching phrases."""
    words = [stem(w.replace("'", "")) for w in _WORD.findall(text.lower()) if w not in _STOP]
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


class BM25Index:
    """Scores every document for a query. Small corpora (a few dozen profiles, a few hundred passages)."""

    def __init__(self, documents: list[str], *, k1: float = 1.2, b: float = 0.75):
        self.size = len(documents)
        self._retriever = bm25s.BM25(k1=k1, b=b)
        if self.size:
            self._retriever.index([tokenize(d) or ["_empty_"] for d in documents], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        vocab = self._retriever.vocab_dict or {}
        known = [t for t in tokenize(query) if t in vocab]
        if not self.size or not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)


def passages(text: str, *, max_words: int = 90) -> list[str]:
    """A knowledge text split into passages: its paragraphs, long ones cut at sentence ends."""
    out: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()):
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", paragraph)
        current: list[str] = []
        for sentence in sentences:
            if current and len(" ".join(current + [sentence]).split()) > max_words:
                out.append(" ".join(current))
                current = []
            current.append(sentence)
        if current:
            out.append(" ".join(current))
    return out


@functools.lru_cache(maxsize=32)
def passage_index(text: str) -> tuple[tuple[str, ...], BM25Index]:
    """A knowledge text's passages and their index, built once per text (an edit makes a new text). Keyed by the
    text itself, so an entry derives from nothing else and is safe to share between organisations."""
    chunks = tuple(passages(text))
    return chunks, BM25Index(list(chunks))


def best_passages(text: str, query: str, *, limit: int = 2) -> list[str]:
    """The passages of `text` that best answer `query`, in their original order; the first one if none match.
    Blocking the first time a text is seen: call it in a thread."""
    chunks, index = passage_index(text)
    if not chunks:
        return []
    scores = index.scores(query)
    ranked = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0][:limit]
    return [chunks[i] for i in sorted(ranked)] or list(chunks[:1])
