"""A short load test over loopback (benchmarks/bench_load.py runs the long one): 20 concurrent clients ask mixed
Chinese and English questions of a real `assistant serve` while it syncs edited documents; every answer is checked."""

from __future__ import annotations

from benchmarks.bench_load import EDITED, LoadRun, summarize

CLIENTS = 20
SECONDS = 15


def test_concurrent_questions_during_a_sync_are_all_answered_and_verified(tmp_path):
    # The documents the syncs rewrite, and the questions about them (which must keep citing their document).
    run = LoadRun(tmp_path, "use", documents=EDITED).start()
    try:
        assert {item["lang"] for item in run.items} == {"zh", "en"}
        run.baseline()
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


def test_a_question_asked_mid_sync_is_answered_from_the_index_as_it_was(settings, monkeypatch):
    """Asked when a sync has rewritten an edited document in place (every later span moved) but before the new
    index is swapped in: the same verified answer as before the sync, not one whose citations no longer check out."""
    from assistant.api import Assistant
    from assistant.indexer import sync
    from assistant.store import Store

    from conftest import copy_corpus

    eo, zh = EDITED[0], EDITED[1]
    copy_corpus(settings.corpus_dir, [eo, zh])
    sync(settings, progress=False)
    assistant = Assistant.open(settings)
    questions = ["How long does the executive order give the Secretary of Labor to reexamine guidance?",
                 "行政命令列舉的另類資產中,哪一類與長壽風險有關?"]
    before = [assistant.ask(q) for q in questions]
    assert all(a.grounded and any(c.doc_id == eo for c in a.citations) for a in before)

    path = settings.corpus_dir / eo
    parts = path.read_text().split("\n\n")
    path.write_text("\n\n".join(parts[:2] + ["Editor's note: a paragraph that moves every later span."] + parts[2:]))
    during = []
    activate = Store.activate

    def ask_then_activate(self, **updates):  # every write of the sync is done; the switch is next
        during.extend(assistant.ask(q) for q in questions)
        return activate(self, **updates)

    monkeypatch.setattr(Store, "activate", ask_then_activate)
    assert assistant.sync().updated == [eo]
    for old, mid in zip(before, during):
        assert mid.grounded
        assert [(c.doc_id, c.start, c.end, c.quote) for c in mid.citations] == \
               [(c.doc_id, c.start, c.end, c.quote) for c in old.citations]
    after = assistant.ask(questions[0])  # and then from the new index, spans moved

    def eo_span(answer):
        return next((c.start, c.end) for c in answer.citations if c.doc_id == eo)

    assert after.grounded and eo_span(after)[0] > eo_span(before[0])[0]
