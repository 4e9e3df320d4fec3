"""The offline router's question model: a ridge classifier over the labelled questions' words."""

from __future__ import annotations

import numpy as np
import pytest

from app.services.agents.question_model import QuestionModel, ridge_fit

EXAMPLES = [
    ("the caller is furious about her bill", ["complaints"]),
    ("furious customer yelling about the wait", ["complaints"]),
    ("a furious patient wants the manager", ["complaints"]),
    ("customer wants her data deleted", ["privacy"]),
    ("please delete all my data says the caller", ["privacy"]),
    ("caller asks what data we keep and wants it deleted", ["privacy"]),
    ("furious caller demands we delete her data", ["complaints", "privacy"]),
    ("write a poem for the team", []),
    ("tell me a joke about the team", []),
]
COLUMNS = ["complaints", "privacy", ""]


def same(text: str) -> str:
    return text


@pytest.fixture(scope="module")
def model() -> QuestionModel:
    return QuestionModel(EXAMPLES, COLUMNS, same)


def test_an_unseen_question_leans_to_the_specialist_its_words_predicted(model):
    furious = model.scores("he sounded furious on the phone")
    deleted = model.scores("can we keep the data or must it be deleted")
    assert int(np.argmax(furious)) == COLUMNS.index("complaints")
    assert int(np.argmax(deleted)) == COLUMNS.index("privacy")
    assert model.scores_for("a poem for the team", ["privacy", "custom-slug", ""])[1] == 0.0  # unknown column


def test_the_leave_one_out_scores_equal_refitting_without_each_row():
    """A labelled question is scored as if it had not been learnt: ridge regression's closed form, checked against
    refitting without each row on the same features."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 5))
    y = rng.integers(0, 2, size=(12, 3)).astype(float)
    kernel = x @ x.T
    _, loo = ridge_fit(kernel, y, 0.3)
    for i in range(12):
        rest = [j for j in range(12) if j != i]
        dual = np.linalg.solve(kernel[np.ix_(rest, rest)] + 0.3 * np.eye(11), y[rest])
        np.testing.assert_allclose(loo[i], kernel[i, rest] @ dual, atol=1e-9)


def test_a_labelled_question_does_not_vote_for_itself(model):
    query = "furious caller demands we delete her data"
    assert model.scores(query)[0] < model.scores(query + " ")[0]  # the same words unlabelled: the full fit


def test_no_labelled_questions_or_no_known_word_scores_zero(model):
    assert not QuestionModel([], COLUMNS, same).scores("anything").any()
    assert not model.scores("zzz qqq").any()
