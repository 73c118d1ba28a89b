"""How often the right sentence is within reach: where the answers' citation misses come from.

A citation hits when the quoted sentence overlaps the evidence, so the citation hit rate cannot beat the rate at which
the evidence sentence is the best-scored candidate sentence. This prints, over the answerable targets of the question
files, the share hit by: the top passage; the top 1, 2, 3 candidate sentences as the answer step scores them; and
the top 1 and 3 sentences of the whole index by the embedding models alone (calibrated, fused), for comparison.

    python -m benchmarks.sentence_ceiling [--qa eval/qa-dev.jsonl eval/qa-extra.jsonl]

Uses the index of the current settings (ASSISTANT_* variables; `assistant index` builds it).
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np

from assistant import answer
from assistant.api import Assistant
from assistant.evaluation import hits, load_questions, locate_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qa", nargs="+", default=["eval/qa-dev.jsonl", "eval/qa-extra.jsonl"])
    args = parser.parse_args()
    assistant = Assistant.open()
    retriever = assistant.retriever
    # Every sentence of the index once, with its vector, for the embeddings-only ranking.
    metas, vectors = assistant.store.sentence_vectors(sorted(retriever._metas))
    unique = {(m["doc_id"], m["start"], m["end"]): (i, m.get("lang", "en")) for i, m in enumerate(metas)}
    keys = list(unique)
    rows = vectors[[unique[k][0] for k in keys]]
    langs = np.array([unique[k][1] for k in keys])

    counts = dict.fromkeys(["top passage", "top 1 sentence", "top 2 sentences", "top 3 sentences",
                            "embeddings only: top 1 sentence", "embeddings only: top 3 sentences"], 0)
    n = 0
    for path in args.qa:
        targets, _ = locate_targets(load_questions(path), assistant.store.document_text)
        for target in targets:
            question = target.item.question
            passages = retriever.search(question, k=5)
            ranked = _all_candidates(question, passages, retriever)
            n += 1
            counts["top passage"] += bool(passages) and hits(_span(passages[0].meta["doc_id"], passages[0].meta["start"],
                                                                   passages[0].meta["end"]), target)
            for k in (1, 2, 3):
                counts[f"top {k} sentence" + ("s" if k > 1 else "")] += any(hits(c, target) for c in ranked[:k])
            scores, _ = retriever._calibrated(question, retriever.embedder.embed_query(question), rows, langs)
            order = np.argsort(-scores)[:3]
            dense = [hits(_span(*keys[j]), target) for j in order]
            counts["embeddings only: top 1 sentence"] += dense[0]
            counts["embeddings only: top 3 sentences"] += any(dense)
    print(f"{n} answerable targets in {', '.join(args.qa)}")
    for name, count in counts.items():
        print(f"  {name:36} {count / n:.2f}")


def _all_candidates(question, passages, retriever):
    """The answer step's candidate sentences, best first, without its cut-offs (margin, count, support)."""
    saved = answer.MAX_SENTENCES, answer.MARGIN, answer.SUPPORT_SHARE
    answer.MAX_SENTENCES, answer.MARGIN, answer.SUPPORT_SHARE = 10**6, float("inf"), 0.0
    try:
        return answer.select_sentences(question, passages, retriever)
    finally:
        answer.MAX_SENTENCES, answer.MARGIN, answer.SUPPORT_SHARE = saved


def _span(doc_id, start, end):
    return SimpleNamespace(doc_id=doc_id, start=start, end=end)


if __name__ == "__main__":
    main()
