"""Specialist teams and the routing evaluation, shared by the agent tests and the bench/ scripts (which import
them from here: tests never put bench/ on the import path)."""

from __future__ import annotations

import random
from collections import Counter

from app.services.agents.specialists import catalogue_views, load_catalogue
from app.services.agents.train_router import TUNING_FILES, read_rows, tuning_rows

__all__ = ["catalogue_views", "tuning_rows"]

# Labelled routing questions, split once by file (tests/data/routing/): the tuning files may be used to tune and
# train anything (train_router reads them); the held-out file was written independently and is only ever
# measured in aggregate (bench/routing_eval.py).
HELDOUT_FILE = "heldout.jsonl"


def routing_rows() -> list[dict]:
    """The original labelled routing set (tuning.jsonl, which the keyword router's thresholds were tuned on):
    {"query": ..., "expected": [slugs]} per line ([] = no specialist)."""
    return read_rows(TUNING_FILES[0])


def heldout_rows() -> list[dict]:
    """The held-out questions ([] until the file is merged). Measure only; never inspect, tune or train on them."""
    return read_rows(HELDOUT_FILE)


def evaluate(predict, rows: list[dict]) -> dict:
    """Multi-label routing quality of `predict(query) -> slugs` on `rows`: micro precision, recall and F1 over
    every (query, specialist) decision, exact-set match, out-of-scope recall, per specialist, and the misses."""
    tp, fp, fn = Counter(), Counter(), Counter()
    exact = oos_total = oos_right = 0
    mistakes = []
    for row in rows:
        expected, got = set(row["expected"]), set(predict(row["query"]))
        for slug in got & expected:
            tp[slug] += 1
        for slug in got - expected:
            fp[slug] += 1
        for slug in expected - got:
            fn[slug] += 1
        exact += got == expected
        if not expected:
            oos_total += 1
            oos_right += not got
        if got != expected:
            mistakes.append({"query": row["query"], "expected": sorted(expected), "got": sorted(got)})
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision = all_tp / (all_tp + all_fp) if all_tp + all_fp else 0.0
    recall = all_tp / (all_tp + all_fn) if all_tp + all_fn else 0.0
    slugs = sorted(set(tp) | set(fp) | set(fn))
    per = {
        s: {
            "precision": round(tp[s] / (tp[s] + fp[s]), 3) if tp[s] + fp[s] else 0.0,
            "recall": round(tp[s] / (tp[s] + fn[s]), 3) if tp[s] + fn[s] else 0.0,
        }
        for s in slugs
    }
    return {
        "micro_f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "micro_precision": round(precision, 3),
        "micro_recall": round(recall, 3),
        "exact_match": round(exact / len(rows), 3),
        "oos_recall": round(oos_right / oos_total, 3) if oos_total else 0.0,
        "per_specialist": per,
        "mistakes": mistakes,
    }


def large_team(count: int, chars: int, seed: int = 7) -> list[dict[str, str]]:
    """`count` specialist forms with about `chars` characters of knowledge each, built from the catalogue
    (catalogue paragraphs in a different order for each, so every profile is distinct)."""
    catalogue = load_catalogue()
    paragraphs = [p for entry in catalogue for p in entry["knowledge"].split("\n\n")]
    rng = random.Random(seed)
    forms = []
    for n in range(count):
        entry = catalogue[n % len(catalogue)]
        parts, size = [entry["knowledge"]], len(entry["knowledge"])
        while size < chars:
            parts.append(rng.choice(paragraphs))
            size += len(parts[-1]) + 2
        knowledge = "\n\n".join(parts)[:chars].rsplit(" ", 1)[0]
        forms.append(
            {
                "slug": f"{entry['slug']}-{n}",
                "name": f"{entry['name']} {n}",
                "description": entry["description"],
                "prompt": entry["prompt"],
                "knowledge": knowledge,
                "keywords": entry["keywords"],
            }
        )
    return forms
