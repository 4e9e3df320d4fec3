"""The offline MODERATOR: which specialists should answer, with no language model.

It scores every (question, specialist) pair, so it works for an organisation's own specialists as well as the
catalogue's: a small logistic model over a handful of features of the pair, trained by
`python -m app.services.agents.train_router` on the project's labelled tuning questions and shipped as
`router_model.json` (a dozen coefficients; applying them is a dot product). The features:
- BM25 of the question, expanded with the domain lexicon (`lexicon.py`), against three fields of the specialist:
  its profile (as the keyword router weighs it), its name and keywords, and its best knowledge passage; each as a
  score and as its share of the best specialist's;
- whether the specialist ranks first, how many of its keyword phrases the question contains;
- the question as a whole: how strong its best match is, how much of it any specialist knows about, and
  requests no business specialist covers (poems, jokes, trivia) and messages that are only small talk.
Every specialist whose probability reaches the calibrated threshold is chosen (at most three, each at least a
share of the best); none reaching it means the question is answered directly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.services.agents.lexicon import CHIT_CHAT, LEXICON, OFF_TOPIC_CUES
from app.services.agents.router import MAX_AGENTS, RouteDecision, profile
from app.services.agents.search import BM25Index, passages, stem, tokenize
from app.services.agents.specialists import SpecialistView

MODEL_PATH = Path(__file__).with_name("router_model.json")
FEATURES = (
    "bias",
    "profile",
    "profile_share",
    "top",
    "keys",
    "keys_share",
    "passage",
    "passage_share",
    "phrases",
    "best",
    "known",
    "off_topic",
)
_EXPANSIONS = {stem(word): text for word, text in LEXICON.items()}
_OFF_TOPIC = frozenset(stem(w) for w in OFF_TOPIC_CUES)
_CHIT_CHAT = frozenset(stem(w) for w in CHIT_CHAT)


def expand(query: str) -> str:
    """The question plus the profile terms of the everyday words it uses."""
    words = [t for t in tokenize(query) if "_" not in t]
    extra = [_EXPANSIONS[w] for w in dict.fromkeys(words) if w in _EXPANSIONS]
    return " ".join([query, *extra])


@functools.lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _share(scores: np.ndarray) -> np.ndarray:
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


class OfflineRouter:
    """Probabilities that each specialist should answer a question; the same API as KeywordRouter."""

    name = "offline"

    def __init__(self, specialists: Sequence[SpecialistView], model: dict | None = None):
        self.slugs = [s.slug for s in specialists]
        self.names = {s.slug: s.name for s in specialists}
        self.model = model or load_model()
        self._weights = np.array([self.model["weights"][f] for f in FEATURES], dtype=np.float64)
        self._profile = BM25Index([profile(s) for s in specialists])
        self._keys = BM25Index([f"{s.name}\n{s.keywords.replace(',', ' ')}" for s in specialists])
        chunks, owners = [], []
        for i, s in enumerate(specialists):
            for chunk in passages(s.knowledge) or [s.description]:
                chunks.append(chunk)
                owners.append(i)
        self._passages = BM25Index(chunks)
        self._owners = np.array(owners, dtype=np.intp)
        self._phrases = [
            [set(tokenize(k)) for k in s.keywords.split(",") if tokenize(k)] + [set(tokenize(s.name))]
            for s in specialists
        ]
        self._vocab = {t for s in specialists for t in tokenize(profile(s))}

    def features(self, query: str) -> np.ndarray:
        """One row of FEATURES per specialist."""
        n = len(self.slugs)
        expanded = expand(query)
        words = set(tokenize(expanded))
        plain = [t for t in tokenize(query) if "_" not in t]
        prof = self._profile.scores(expanded).astype(np.float64)
        keys = self._keys.scores(expanded).astype(np.float64)
        best_passage = np.zeros(n)
        if self._owners.size:
            np.maximum.at(best_passage, self._owners, self._passages.scores(expanded).astype(np.float64))
        top = np.zeros(n)
        if n and prof.max() > 0:
            top[int(np.argmax(prof))] = 1.0
        phrases = np.array([min(3, sum(p <= words for p in ps)) for ps in self._phrases], dtype=np.float64)
        known = sum(t in self._vocab for t in plain) / len(plain) if plain else 0.0
        off_topic = float(any(t in _OFF_TOPIC for t in plain) or all(t in _CHIT_CHAT for t in plain))
        best = np.log1p(prof.max()) if n else 0.0
        columns = [
            np.ones(n),
            np.log1p(prof),
            _share(prof),
            top,
            np.log1p(keys),
            _share(keys),
            np.log1p(best_passage),
            _share(best_passage),
            phrases,
            np.full(n, best),
            np.full(n, known),
            np.full(n, off_topic),
        ]
        return np.stack(columns, axis=1) if n else np.zeros((0, len(FEATURES)))

    def probabilities(self, query: str) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.features(query) @ self._weights)))

    def rank(self, query: str) -> list[tuple[str, float]]:
        """Every specialist with its probability of being right for `query`, best first."""
        p = self.probabilities(query)
        return [(self.slugs[i], float(p[i])) for i in np.argsort(-p, kind="stable")]

    def choose(self, query: str) -> list[str]:
        return [slug for slug, _ in self._chosen(self.rank(query))]

    def _chosen(self, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        threshold, relative = self.model["threshold"], self.model["relative"]
        if not ranked or ranked[0][1] < threshold:
            return []
        floor = max(threshold, relative * ranked[0][1])
        return [(slug, p) for slug, p in ranked[:MAX_AGENTS] if p >= floor]

    def route(self, query: str, history: Sequence[dict] = (), fallback: str = "") -> RouteDecision:
        ranked = self.rank(query)
        chosen = self._chosen(ranked)
        if not chosen:
            # A short follow-up ("and for children?") inherits the topic of the previous question.
            previous = next((m["content"] for m in reversed(history) if m.get("role") == "user"), "")
            if previous and len(query.split()) <= 8:
                ranked = self.rank(f"{previous} {query}")
                chosen = self._chosen(ranked)
        if chosen:
            picked = ", ".join(f"{self.names[s]} ({p:.0%})" for s, p in chosen)
            reason = f"Best matches for this question: {picked}."
        elif ranked:
            slug, p = ranked[0]
            reason = (
                f"No specialist's topic matches this question closely (the closest, {self.names[slug]}, "
                f"scores {p:.0%}; {self.model['threshold']:.0%} is needed), so it is answered directly."
            )
        else:
            reason = "There are no specialists to ask, so it is answered directly."
        return RouteDecision(agents=[s for s, _ in chosen], reason=reason, router=self.name, fallback=fallback)
