"""A short load test over loopback (benchmarks/bench_load.py runs the long one): 20 concurrent clients ask mixed
Chinese and English questions of a real `assistant serve` while it syncs edited documents; every answer is checked."""

from __future__ import annotations

from benchmarks.bench_load import EDITED, LoadRun, summarize

CLIENTS = 20
SECONDS = 15


def test_concurrent_questions_during_a_sync_are_all_answered_and_verified(tmp_path):
    run = LoadRun(tmp_path, "use").start()
    try:
        # The questions about the documents the syncs rewrite: those must keep citing their document throughout.
        at_risk = [item for item in run.items if item.get("doc") in EDITED]
        run.baseline(at_risk)
        assert len(run.expected) >= 8, run.expected
        outcomes, _ = run.run(CLIENTS, SECONDS, syncing=True, gap=0.5)
    finally:
        run.stop()
    result = summarize(outcomes, run.syncs, SECONDS)
    print({k: v for k, v in result.items() if k != "problems"})
    assert result["syncs"] >= 1 and result["sync_errors"] == 0, run.syncs
    assert result["requests"] >= CLIENTS and result["zh"] and result["en"]
    assert result["errors"] == 0 and result["problems"] == [], result["problems"][:10]
    assert result["during_sync"] >= CLIENTS  # the clients kept asking while the index was rewritten ...
    assert result["held_for_a_whole_sync"] == 0  # ... and none of them waited for a whole sync
