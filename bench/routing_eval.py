"""Quality of the offline MODERATOR: the trained offline router against today's BM25 keyword router.

Routing is multi-label classification with "none": micro-F1 over every (query, specialist) decision, exact-set
match, and out-of-scope recall (queries labelled [] that the router answers directly). In one run, for both
routers:
- the tuning set (tests/data/routing/tuning*.jsonl): what the offline router was trained and calibrated on, and
  the keyword router's thresholds tuned on, so in-sample and optimistic; its first misses are printed;
- 5-fold cross-validation on the tuning set: the offline router retrained (coefficients and thresholds) on four
  folds and measured on the fifth; mean and spread over the folds;
- leave one author out: each tuning file written by an independent author (all but tuning.jsonl, which the
  keyword lists were written from) measured by the offline router trained on every other file: how it does on
  an author it never learnt from, the situation of the held-out set and of any organisation's staff;
- the held-out set (tests/data/routing/heldout.jsonl), written independently: aggregates only, never per query;
- the routing time per query (p95) with the catalogue's 22 specialists.
Default specialists come from the shipped catalogue; no database or LLM is needed. Last line: one JSON object.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.agents.offline_router import OfflineRouter  # noqa: E402
from app.services.agents.router import KeywordRouter  # noqa: E402
from app.services.agents.train_router import TUNING_FILES, build_model, cross_validate, read_rows  # noqa: E402
from tests.agent_kit import catalogue_views, evaluate, heldout_rows, tuning_rows  # noqa: E402


def _summary(result: dict) -> dict:
    keys = ("micro_f1", "micro_precision", "micro_recall", "exact_match", "oos_recall")
    return {k: result[k] for k in keys}


def _compare(splits, specialists: list, keyword: KeywordRouter, figures: tuple[str, ...]) -> tuple[dict, dict]:
    """Each figure on every (rows, model) split: the offline router with that split's model, and the keyword
    router (its thresholds are fixed) on the same rows."""
    offline: dict[str, list[float]] = {k: [] for k in figures}
    baseline: dict[str, list[float]] = {k: [] for k in figures}
    for rows, model in splits:
        mine, theirs = evaluate(OfflineRouter(specialists, model).choose, rows), evaluate(keyword.choose, rows)
        for key in figures:
            offline[key].append(mine[key])
            baseline[key].append(theirs[key])
    return offline, baseline


def _cv(rows: list[dict], specialists: list, keyword: KeywordRouter) -> tuple[dict, dict]:
    """Mean and spread over the 5 folds: the offline router retrained on the other four each time, and the
    keyword router measured on the same folds."""
    splits = (([rows[i] for i in held], model) for held, model in cross_validate(rows, specialists))

    def summary(values: dict[str, list[float]]) -> dict:
        return {
            **{k: round(statistics.mean(v), 3) for k, v in values.items()},
            **{f"{k}_sd": round(statistics.pstdev(v), 3) for k, v in values.items()},
        }

    offline, baseline = _compare(splits, specialists, keyword, ("micro_f1", "exact_match", "oos_recall"))
    return summary(offline), summary(baseline)


def _by_author(specialists: list, keyword: KeywordRouter) -> tuple[dict, dict]:
    """Mean and worst micro-F1 and exact set over the independent authors' files, each measured by the router
    trained on all the other files (and the keyword router on the same files)."""
    files = {name: read_rows(name) for name in TUNING_FILES}
    splits = (
        (files[name], build_model([r for other, rows in files.items() if other != name for r in rows], specialists))
        for name in TUNING_FILES[1:]
    )

    def summary(values: dict[str, list[float]]) -> dict:
        return {
            "authors": len(values["micro_f1"]),
            **{k: round(statistics.mean(v), 3) for k, v in values.items()},
            **{f"{k}_min": round(min(v), 3) for k, v in values.items()},
        }

    offline, baseline = _compare(splits, specialists, keyword, ("micro_f1", "exact_match"))
    return summary(offline), summary(baseline)


def _p95_ms(route, queries: list[str]) -> float:
    times = []
    for query in queries:
        started = time.perf_counter()
        route(query)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.quantiles(times, n=20)[18], 3)


def main() -> None:
    specialists = catalogue_views()
    tuning, heldout = tuning_rows(), heldout_rows()
    offline, keyword = OfflineRouter(specialists), KeywordRouter(specialists)

    tuned = evaluate(offline.choose, tuning)
    mistakes = tuned.pop("mistakes")
    for m in mistakes[:40]:
        print(f"tuning miss: {m['query']!r} expected {m['expected']} got {m['got']}")
    print(f"tuning misses: {len(mistakes)} of {len(tuning)} (the first 40 above)")
    cv, baseline_cv = _cv(tuning, specialists, keyword)
    authors, baseline_authors = _by_author(specialists, keyword)
    baseline_tuning = evaluate(keyword.choose, tuning)
    held = evaluate(offline.choose, heldout) if heldout else None
    baseline_held = evaluate(keyword.choose, heldout) if heldout else None
    queries = [r["query"] for r in tuning + heldout]
    offline.route(queries[0]), keyword.route(queries[0])  # warm up
    out = {
        "specialists": len(specialists),
        "tuning_queries": len(tuning),
        "heldout_queries": len(heldout),
        "heldout_micro_f1": held["micro_f1"] if held else None,
        "heldout_exact": held["exact_match"] if held else None,
        "heldout_oos_recall": held["oos_recall"] if held else None,
        "cv_micro_f1": cv["micro_f1"],
        "cv_micro_f1_sd": cv["micro_f1_sd"],
        "cv_exact": cv["exact_match"],
        "cv_oos_recall": cv["oos_recall"],
        "author_micro_f1": authors["micro_f1"],
        "author_micro_f1_min": authors["micro_f1_min"],
        "author_exact": authors["exact_match"],
        "tuning_micro_f1": tuned["micro_f1"],
        "tuning_exact": tuned["exact_match"],
        "tuning_oos_recall": tuned["oos_recall"],
        "baseline_heldout_micro_f1": baseline_held["micro_f1"] if baseline_held else None,
        "baseline_heldout_exact": baseline_held["exact_match"] if baseline_held else None,
        "baseline_heldout_oos_recall": baseline_held["oos_recall"] if baseline_held else None,
        "baseline_cv_micro_f1": baseline_cv["micro_f1"],
        "baseline_author_micro_f1": baseline_authors["micro_f1"],
        "baseline_tuning_micro_f1": baseline_tuning["micro_f1"],
        "route_ms_p95": _p95_ms(offline.route, queries),
        "baseline_route_ms_p95": _p95_ms(keyword.route, queries),
        "offline": {
            "tuning": _summary(tuned),
            "cv": cv,
            "authors": authors,
            "heldout": _summary(held) if held else None,
        },
        "baseline": {
            "tuning": _summary(baseline_tuning),
            "cv": baseline_cv,
            "authors": baseline_authors,
            "heldout": _summary(baseline_held) if baseline_held else None,
        },
        "targets": {"heldout_micro_f1": 0.85, "heldout_exact": 0.7, "heldout_oos_recall": 0.9, "route_ms_p95": 5},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
