"""Quality of the offline (BM25) MODERATOR on the labelled set tests/data/routing_eval.jsonl.

Routing is multi-label classification with "none": per specialist precision and recall, micro-F1 over all
(query, specialist) decisions, exact-set match, and out-of-scope recall (queries labelled [] that the router
answers directly). Baseline, in the same run: always pick the single best BM25 match (no thresholds).
Default specialists come from the shipped catalogue; no database or LLM is needed. Last line: one JSON object.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.agents.router import KeywordRouter  # noqa: E402
from app.services.agents.specialists import SpecialistView, load_catalogue  # noqa: E402

DATA = ROOT / "tests" / "data" / "routing_eval.jsonl"


def catalogue_views() -> list[SpecialistView]:
    return [
        SpecialistView(id=e["slug"], is_active=True, is_default=True, updated_at="", **e) for e in load_catalogue()
    ]


def evaluate(predict, rows: list[dict]) -> dict:
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


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    router = KeywordRouter(catalogue_views())
    result = evaluate(router.choose, rows)
    baseline = evaluate(lambda q: [r[0][0]] if (r := router.rank(q)) else [], rows)
    for m in result.pop("mistakes"):
        print(f"miss: {m['query']!r} expected {m['expected']} got {m['got']}")
    print(json.dumps({
        "queries": len(rows),
        "specialists": len(router.slugs),
        "micro_f1": result["micro_f1"],
        "micro_precision": result["micro_precision"],
        "micro_recall": result["micro_recall"],
        "exact_match": result["exact_match"],
        "oos_recall": result["oos_recall"],
        "baseline_top1_micro_f1": baseline["micro_f1"],
        "baseline_top1_exact_match": baseline["exact_match"],
        "target_micro_f1": 0.8,
        "per_specialist": result["per_specialist"],
    }))


if __name__ == "__main__":
    main()
