"""What the labelled questions say about a new one: a linear text classifier over the words staff use.

A ridge regression (one column per specialist, and one for "no specialist") over TF-IDF vectors of the labelled
questions, expanded with the domain lexicon like every other match. Where the nearest-neighbour features look at a
few similar questions, this weighs every word by what it predicted across all of them ("furious" towards
complaints, "wipe" towards data privacy), so evidence from many questions adds up. Fitted in closed form (numpy,
deterministic) once per set of labelled questions (`offline_router._labelled`), from those shipped with the
model.

A question that is itself one of the labelled ones gets its leave-one-out score (exact for ridge regression), so
the router's coefficients are trained on scores like those an unseen question gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from app.services.agents.search import tokenize

RIDGE = 0.3  # penalty on L2-normalised question vectors (leave one author out: 0.15-0.5 alike, 1 and 2 worse)


def ridge_fit(kernel: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ridge regression: the dual coefficients (K + rI)^-1 y, and every row's leave-one-out prediction,
    exact in closed form: (fit - h * y) / (1 - h), where the fit K(K + rI)^-1 y = y - r * dual and the hat
    matrix's diagonal h = 1 - r * diag((K + rI)^-1)."""
    diagonal = np.diag_indices_from(kernel)
    kernel[diagonal] += ridge  # in place, then restored: allocating another n x n array stalls other threads
    try:
        inverse = np.linalg.inv(kernel)
    finally:
        kernel[diagonal] -= ridge
    dual = inverse @ y
    hat = 1.0 - ridge * np.diag(inverse)
    fitted = y - ridge * dual
    return dual, (fitted - hat[:, None] * y) / (1.0 - hat)[:, None]


class QuestionModel:
    """Scores of `columns` (specialist slugs, and "" for no specialist) for a question."""

    def __init__(
        self,
        examples: Sequence[tuple[str, Sequence[str]]],
        columns: Sequence[str],
        prepare: Callable[[str], str],
        ridge: float = RIDGE,
    ):
        self.columns = list(columns)
        self._prepare = prepare
        self._weights: dict[str, np.ndarray] = {}
        self._idf: dict[str, float] = {}
        self._loo: dict[str, np.ndarray] = {}
        column = {c: i for i, c in enumerate(self.columns)}
        labelled = [(q, labels) for q, labels in examples if q.strip()]
        if not labelled or not self.columns:
            return
        bags = [Counter(tokenize(prepare(q))) for q, _ in labelled]
        df = Counter(t for bag in bags for t in bag)
        vocab = sorted(t for t, n in df.items() if n >= 2)  # a word seen once predicts nothing reliably
        if not vocab:
            return
        n = len(labelled)
        self._idf = {t: float(np.log((1 + n) / (1 + df[t])) + 1.0) for t in vocab}
        # The L2-normalised TF-IDF vectors as flat (row, word, weight) arrays, grouped by word: a question has a
        # few dozen words, so the kernel is accumulated word by word instead of from a dense n x vocabulary
        # matrix, and no per-word Python containers are made (a burst of them sets off a full garbage collection,
        # which pauses every thread, the event loop's too).
        word_id = {t: i for i, t in enumerate(vocab)}
        row_of: list[int] = []
        word_of: list[int] = []
        weight_of: list[float] = []
        for r, bag in enumerate(bags):
            for t, count in bag.items():
                if t in word_id:
                    row_of.append(r)
                    word_of.append(word_id[t])
                    weight_of.append((1.0 + float(np.log(count))) * self._idf[t])
        rows, words, values = np.array(row_of), np.array(word_of), np.array(weight_of)
        rows, words = rows.astype(np.intp), words.astype(np.intp)
        values = values / np.sqrt(np.bincount(rows, weights=values * values, minlength=n))[rows]
        order = np.argsort(words, kind="stable")
        rows, words, values = rows[order], words[order], values[order]
        starts = np.searchsorted(words, np.arange(len(vocab) + 1))
        kernel = np.zeros((n, n))
        for w in range(len(vocab)):
            r, v = rows[starts[w] : starts[w + 1]], values[starts[w] : starts[w + 1]]
            kernel[np.ix_(r, r)] += np.outer(v, v)
        y = np.zeros((n, len(self.columns)))
        for row, (_, labels) in enumerate(labelled):
            for slug in labels or [""]:
                if slug in column:
                    y[row, column[slug]] = 1.0
        dual, loo = ridge_fit(kernel, y, ridge)
        self._weights = {
            t: values[starts[w] : starts[w + 1]] @ dual[rows[starts[w] : starts[w + 1]]] for w, t in enumerate(vocab)
        }
        self._loo = {q: loo[row] for row, (q, _) in enumerate(labelled)}

    def scores_for(self, query: str, columns: Sequence[str]) -> np.ndarray:
        """The scores of `columns` (0 for a column the labelled questions never name)."""
        mine = {c: i for i, c in enumerate(self.columns)}
        scores = self.scores(query)
        return np.array([scores[mine[c]] if c in mine else 0.0 for c in columns])

    def scores(self, query: str) -> np.ndarray:
        """One score per column; a labelled question's own label never counts towards its score."""
        if query in self._loo:
            return self._loo[query]
        out = np.zeros(len(self.columns))
        bag = Counter(t for t in tokenize(self._prepare(query)) if t in self._weights)
        if not bag:
            return out
        values = {t: (1.0 + np.log(count)) * self._idf[t] for t, count in bag.items()}
        norm = float(np.sqrt(sum(v * v for v in values.values())))
        for t, v in values.items():
            out += self._weights[t] * (v / norm)
        return out
