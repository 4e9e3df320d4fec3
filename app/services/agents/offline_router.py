"""The offline MODERATOR: which specialists should answer, with no language model.

It scores every (question, specialist) pair, so it works for an organisation's own specialists as well as the
catalogue's: a small logistic model over a handful of features of the pair, trained by
`python -m app.services.agents.train_router` on the project's labelled tuning questions and shipped as
`router_model.json` (20 coefficients, applied as a dot product, and the labelled questions). The features:
- BM25 of the question, expanded with the domain lexicon (`lexicon.py`), against three fields of the specialist:
  its profile (as the keyword router weighs it), its name and keywords, and its best knowledge passage; each as a
  score and as its share of the best specialist's; and how much the lexicon added to the profile's score;
- whether the specialist ranks first, how many of its keyword phrases the question contains;
- its profile match on the words the best match does not explain (a second topic in the same question);
- the labelled questions most like this one: the specialist's share of them and how close the nearest is (zero
  for an organisation's own specialist, which the model also learns to route on its own text: see train_router),
  and what a linear classifier over all of them says of this specialist and of "no specialist"
  (`question_model.py`);
- the question as a whole: how strong its best match is, how much of it any specialist knows about, requests no
  business specialist covers (poems, jokes, trivia), messages that are only small talk, and the share of similar
  labelled questions that no specialist took.
Every specialist whose probability reaches the calibrated threshold is chosen (at most three, each at least a
share of the best); none reaching it means the question is answered directly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.services.agents.decision import MAX_AGENTS, RouteDecision, profile
from app.services.agents.lexicon import CHIT_CHAT, LEXICON, OFF_TOPIC_CUES
from app.services.agents.question_model import QuestionModel
from app.services.agents.search import BM25Index, passages, stem, tokenize
from app.services.agents.specialists import SpecialistView, catalogue_views

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
    "similar",
    "similar_max",
    "lexicon",
    "best",
    "known",
    "off_topic",
    "similar_none",
    "labelled",
    "labelled_none",
    "residual",
    "residual_share",
)
NEIGHBOURS = 8  # labelled questions consulted for the "similar" features (5-fold CV: 3, 5, 8 within noise)
_EXPANSIONS = {stem(word): text for word, text in LEXICON.items()}
_OFF_TOPIC = frozenset(stem(w) for w in OFF_TOPIC_CUES)
_CHIT_CHAT = frozenset(stem(w) for w in CHIT_CHAT)


def expand(query: str) -> str:
    """The question plus the profile terms of the everyday words it uses."""
    words = [t for t in tokenize(query) if "_" not in t]
    extra = [_EXPANSIONS[w] for w in dict.fromkeys(words) if w in _EXPANSIONS]
    return " ".join([query, *extra])


@functools.lru_cache(maxsize=8)
def _labelled(examples: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[BM25Index, QuestionModel]:
    """The labelled questions' index and question model: the same for every team, so built once per model (the
    question model's fit takes most of a second) instead of for each organisation and each edit."""
    columns = sorted({slug for _, labels in examples for slug in labels}) + [""]
    return BM25Index([expand(q) for q, _ in examples]), QuestionModel(examples, columns, expand)


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
        self._weights = np.array([self.model["weights"].get(f, 0.0) for f in FEATURES], dtype=np.float64)
        # The catalogue's other specialists join the indexes as background: a word's weight (BM25's IDF) then
        # means the same in a team of one as in a team of thirty, as the trained coefficients assume.
        own = set(self.slugs)
        corpus = [*specialists, *(s for s in catalogue_views() if s.slug not in own)]
        self._profile = BM25Index([profile(s) for s in corpus])
        self._keys = BM25Index([f"{s.name}\n{s.keywords.replace(',', ' ')}" for s in corpus])
        chunks, owners = [], []
        for i, s in enumerate(corpus):
            for chunk in passages(s.knowledge) or [s.description]:
                chunks.append(chunk)
                owners.append(i)
        self._passages = BM25Index(chunks)
        self._owners = np.array(owners, dtype=np.intp)
        self._corpus = len(corpus)
        self._phrases = [
            [set(tokenize(k)) for k in s.keywords.split(",") if tokenize(k)] + [set(tokenize(s.name))]
            for s in specialists
        ]
        self._profile_words = [set(tokenize(f"{s.name} {s.keywords} {s.description}")) for s in specialists]
        self._vocab = {t for s in specialists for t in tokenize(profile(s))}
        # Labelled questions shipped with the model: how staff actually ask about the catalogue's topics.
        examples = tuple((q, tuple(labels)) for q, labels in self.model.get("examples", []) if q.strip())
        self._examples = [q for q, _ in examples]
        column = {slug: i for i, slug in enumerate(self.slugs)}
        self._example_labels = np.zeros((len(examples), len(self.slugs)))
        for row, (_, labels) in enumerate(examples):
            for slug in labels:
                if slug in column:
                    self._example_labels[row, column[slug]] = 1.0
        self._example_none = np.array([not labels for _, labels in examples], dtype=np.float64)
        self._example_index, self._question_model = _labelled(examples)

    def _similar(self, query: str, expanded: str) -> tuple[np.ndarray, float, np.ndarray]:
        """Each specialist's share of the labelled questions most like this one, the share labelled none, and how
        alike the closest one labelled with each specialist is. A labelled question identical to `query` is
        skipped, so training rows do not vote for themselves."""
        if not self._examples:
            return np.zeros(len(self.slugs)), 0.0, np.zeros(len(self.slugs))
        scores = self._example_index.scores(expanded).astype(np.float64)
        order = [i for i in np.argsort(-scores, kind="stable")[: NEIGHBOURS + 1] if scores[i] > 0]
        order = [i for i in order if self._examples[i] != query][:NEIGHBOURS]
        total = float(scores[order].sum()) if order else 0.0
        if total <= 0:
            return np.zeros(len(self.slugs)), 0.0, np.zeros(len(self.slugs))
        weights = scores[order] / total
        best = (self._example_labels[order] * scores[order][:, None]).max(axis=0)
        return weights @ self._example_labels[order], float(weights @ self._example_none[order]), np.log1p(best)

    def _residual(self, query: str, prof: np.ndarray) -> np.ndarray:
        """Each specialist's profile match on what the question says beyond the best match's own words: a
        second topic ("...and she's furious") stands out once the first topic's words are set aside."""
        n = len(self.slugs)
        if prof.max() <= 0:
            return np.zeros(n)
        top = int(np.argmax(prof))
        words = [w for w in query.split() if not (set(tokenize(expand(w))) & self._profile_words[top])]
        rest = self._profile.scores(expand(" ".join(words)))[:n].astype(np.float64) if words else np.zeros(n)
        rest[top] = prof[top]
        return rest

    def features(self, query: str) -> np.ndarray:
        """One row of FEATURES per specialist."""
        n = len(self.slugs)
        if not n:
            return np.zeros((0, len(FEATURES)))
        expanded = expand(query)
        words = set(tokenize(expanded))
        plain = [t for t in tokenize(query) if "_" not in t]
        plain_prof = self._profile.scores(query)[:n].astype(np.float64)
        prof = self._profile.scores(expanded)[:n].astype(np.float64)
        keys = self._keys.scores(expanded)[:n].astype(np.float64)
        best_passage = np.zeros(self._corpus)
        np.maximum.at(best_passage, self._owners, self._passages.scores(expanded).astype(np.float64))
        best_passage = best_passage[:n]
        top = np.zeros(n)
        if prof.max() > 0:
            top[int(np.argmax(prof))] = 1.0
        phrases = np.array([min(3, sum(p <= words for p in ps)) for ps in self._phrases], dtype=np.float64)
        known = sum(t in self._vocab for t in plain) / len(plain) if plain else 0.0
        off_topic = float(any(t in _OFF_TOPIC for t in plain) or all(t in _CHIT_CHAT for t in plain))
        best = np.log1p(prof.max())
        similar, similar_none, similar_max = self._similar(query, expanded)
        labelled = self._question_model.scores_for(query, [*self.slugs, ""])
        residual = self._residual(query, prof)
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
            similar,
            similar_max,
            np.log1p(prof) - np.log1p(plain_prof),
            np.full(n, best),
            np.full(n, known),
            np.full(n, off_topic),
            np.full(n, similar_none),
            labelled[:n],
            np.full(n, labelled[n]),
            np.log1p(residual),
            _share(residual),
        ]
        return np.stack(columns, axis=1)

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
