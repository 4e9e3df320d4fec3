"""Quality of the offline (BM25) MODERATOR on the labelled set tests/data/routing_eval.jsonl.

Routing is multi-label classification with "none": per specialist precision and recall, micro-F1 over all
(query, specialist) decisions, exact-set match, and out-of-scope recall (queries labelled [] that the router
answers directly). Baseline, in the same run: always pick the single best BM25 match (no thresholds).
Default specialists come from the shipped catalogue; no database or LLM is needed. Last line: one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.agents.router import KeywordRouter  # noqa: E402
from tests.agent_kit import catalogue_views, evaluate, routing_rows  # noqa: E402


def main() -> None:
    rows = routing_rows()
    router = KeywordRouter(catalogue_views())
    result = evaluate(router.choose, rows)
    baseline = evaluate(lambda q: [r[0][0]] if (r := router.rank(q)) else [], rows)
    for m in result.pop("mistakes"):
        print(f"miss: {m['query']!r} expected {m['expected']} got {m['got']}")
    print(
        json.dumps(
            {
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
            }
        )
    )


if __name__ == "__main__":
    main()
