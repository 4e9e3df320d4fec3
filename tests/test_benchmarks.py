"""The benchmarks still run and still measure what they claim, at a small size (figures are not checked here:
timings on a shared machine say nothing in a test; the counts and invariants do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, *args: str, timeout: int = 300) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_csv_import_bench_accounts_for_every_row():
    result = run_bench("csv_import.py", "--rows", "3000")
    assert result["rows"] == 3000
    assert result["created"] + result["skipped"] + result["failed"] == 3000
    assert result["failed"] == result["generated_invalid"] > 0
    assert 0 < result["skipped"] <= result["generated_duplicates"]  # only duplicates inside the file are skipped
    # The floor stored every imported row again and built every index `contacts` has, the search index among them.
    assert result["floor_rows"] == result["created"]
    assert result["floor_indexes_built"] == result["floor_indexes_of_contacts"] > 1
    assert result["floor_search_indexes"] >= 1


def test_crm_bench_reports_every_query():
    result = run_bench("crm_queries.py", "--contacts", "100000", "--interactions", "20000", "--samples", "5")
    assert result["contacts"] == 100000
    # Every timed call answered right: page 50 full, timelines newest first, the dashboard counting every contact,
    # every sampled caller's number found.
    for name in ("page", "timeline", "dashboard", "caller"):
        assert result[f"{name}_right"] == result["samples"] == 5, name


def test_voice_bench_delivers_every_frame_and_records_every_call():
    result = run_bench("voice_bridge.py", "--calls", "2", "--seconds", "7", "--arrival", "1")
    assert result["calls_recorded"] == 2
    assert result["frames"] > 0 and result["frames_dropped"] == 0 and result["baseline_frames_dropped"] == 0
    assert result["protocol_violations"] == 0
    sent, total = (int(n) for n in result["clears"].split("/"))
    assert total > 0 and sent == total  # the agent barged in at least once, and every clear reached the caller
    assert result["barge_ins_without_clear"] == 0
    # where a frame's time goes: the sidecar's own view and both processes' CPU are reported
    assert result["event_loop_lag_p99_ms"] is not None and result["gc_pauses"] > 0
    assert result["gc_full_collections"] == 0  # no call waited for a full collection
    assert result["cpu_us_per_frame"] > 0 and result["baseline_cpu_us_per_frame"] > 0


def test_consent_flow_bench_times_every_consultation_from_yes_to_the_expert_answer():
    result = run_bench("consent_flow.py", "--calls", "2", "--seconds", "20", "--arrival", "1")
    assert result["calls"] == result["answered"] == 2 and result["outcomes"] == {"answered": 2}
    assert result["protocol_violations"] == 0 and result["frames_dropped"] == 0
    # the fixed work is on the measured path: routing, the specialists and the synthesis (and the consent, when
    # the language model read it), so no consultation is timed shorter than it
    assert result["collaboration_ms"] in (2800.0, 3000.0)
    assert result["consult_ms_p50"] >= result["collaboration_ms"] and result["overhead_ms_p50"] >= 0
    assert result["frames_in_windows"] > 0  # caller frames kept flowing during the hold
    assert result["budget_ms"] == 30000


def test_agent_routing_bench_builds_the_index_once_for_every_message():
    result = run_bench("agent_routing.py", "--specialists", "12", "--chars", "5000", "--messages", "6")
    assert result["specialists"] == 12 and result["messages"] == 6
    assert result["index_builds"] == 1  # the first message after the edit built it; the rest used it
    assert 4_900 <= result["knowledge_chars_each"] <= 5_000


def test_api_load_bench_serves_every_request_of_both_loads():
    result = run_bench(
        "api_load.py", "--clients", "4", "--seconds", "2", "--warmup", "0.5", "--slices", "2", "--tokens", "2"
    )
    assert result["contacts"] == 29 and result["tokens"] == 2  # the demo organisation, signed in over HTTP
    for load in ("bare", "contacts_phase"):
        figures = result[load]
        assert figures["requests"] > 0 and figures["statuses"] == {"200": figures["requests"]}
        assert figures["failures"] == {}  # no transport errors, and every body was the one asked for
    assert set(result["contacts_by_kind"]) == {"search", "list", "get"}
    assert sum(result["contacts_by_kind"].values()) == result["contacts_phase"]["requests"]


def test_campaign_bench_sends_every_recipient_once_through_the_job_runner():
    result = run_bench("campaign_send.py", "--recipients", "2500", "--pairs", "2")
    assert result["pairs"] == 2 and result["ratio_to_bare"] in result["pair_ratios"]
    # Each pair is a campaign of its own to the same contacts: one request per 1,000 recipients, every address
    # got the message once, in the campaign and in the bare run.
    for pair in result["each_pair"]:
        assert pair["sent_count"] == 2500 and pair["requests"] == 3
        assert pair["messages"] == pair["addresses"] == pair["bare_messages"] == 2500
        assert pair["most_to_one_address"] == 1
        assert pair["campaign_cpu_seconds"]["runner"] > 0 and pair["bare_cpu_seconds"]["fake"] > 0
    assert result["requests"] == 3


def test_campaign_analytics_bench_answers_every_query_right():
    result = run_bench("campaign_analytics.py", "--recipients", "5000", "--campaigns", "20", "--samples", "5")
    assert result["recipients"] == 5000 and result["campaigns"] == 21
    assert result["events"] > 3 * 5000 * 0.9  # about three events per recipient, as at full size
    assert result["rollup_matches_events"]  # the chart's hourly rollup counted every open and click once
    for name in ("campaign", "figures", "chart", "links", "recipients", "timeline", "page", "list"):
        assert result[f"{name}_right"] == result["samples"] == 5, name


def test_tracking_bench_stores_every_hit_it_answered_once():
    result = run_bench(
        "tracking.py",
        "--recipients",
        "100",
        "--clients",
        "10",
        "--seconds",
        "1.5",
        "--slices",
        "1",
        "--warmup",
        "0.6",
        "--paced-seconds",
        "0.5",
    )
    assert result["answered"] > 0 and result["wrong_answers"] == 0
    assert result["stored"] == result["answered"] and result["events_lost"] == 0 and result["counters_exact"] is True
    assert result["opens_per_s"] > 0 and result["clicks_per_s"] > 0 and result["bare_per_s"] > 0


def test_billing_run_bench_invoices_every_organisation_once_in_both_parts():
    result = run_bench("billing_run.py", "--tenants", "300", "--rows", "30000", "--limited-tenants", "40")
    assert (result["tenants"], result["invoices"], result["limited_invoices"]) == (300, 300, 40)
    assert result["duplicates"] == 0 and result["missing_or_wrong"] == 0 and result["limited_failed"] == 0
    assert result["exit_codes"][1] == 0 and result["exit_codes"][0] in (0, 2)
    assert result["rate_use"] > 0 and result["cpu_seconds"]["runner"] > 0
