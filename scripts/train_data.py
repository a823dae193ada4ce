#!/usr/bin/env python3
"""scripts/train_data.py — shortens COMI training rows for CPU training.

Reads COMI JSONL rows that carry `documents` and `gold_document` (0-based;
../shared/data/nq-train.jsonl), keeps the gold passage plus DOCS-1 of the
other passages drawn with a seeded generator, shuffles their order (so the
gold passage sits anywhere), and rebuilds `input` in the data's own format
("Document [i](Title: T) text", one per line). The answer and prompt are
unchanged. The last HOLDOUT rows go to a second file for evaluation losses
(they are training-split rows; the evaluation sets are never used).

--task reconstruct writes rows of a reconstruction stage instead (the decoder
must repeat a passage from its memories, so only the memories can lower the
loss): for each source row, DOCS passages (the gold one + DOCS-1 others),
each its own row with `input` = that passage in the data's format, `prompt`
= the fixed instruction RECON_PROMPT, `answer` = the first ANSWER_WORDS
words of the passage's text (after its title). The held-out split is by
source row, as for QA.

usage: train_data.py IN.jsonl OUT_TRAIN.jsonl OUT_HELDOUT.jsonl [--docs 4]
       [--holdout 32] [--seed 1] [--task qa|reconstruct] [--answer-words 40]
"""
import argparse
import json
import random


def passage(i, doc):
    title, _, text = doc.partition("\n")
    return f"Document [{i}](Title: {title}) {text}"


RECON_PROMPT = "Repeat the document word for word."


def reconstruct_rows(rid, keep, answer_words):
    out = []
    for k, doc in enumerate(keep):
        title, _, text = doc.partition("\n")
        words = text.split()
        if not words:
            continue
        out.append({"id": f"{rid}-r{k}", "input": passage(1, doc), "prompt": RECON_PROMPT,
                    "answer": " ".join(words[:answer_words])})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out_train")
    ap.add_argument("out_heldout")
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--holdout", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--task", choices=("qa", "reconstruct"), default="qa")
    ap.add_argument("--answer-words", type=int, default=40)
    a = ap.parse_args()
    if a.docs < 1 or a.holdout < 0 or a.answer_words < 1:
        ap.error("--docs and --answer-words must be >= 1, --holdout >= 0")
    rng = random.Random(a.seed)
    rows = []
    with open(a.inp, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            docs, gold = r["documents"], r["gold_document"]
            others = [d for i, d in enumerate(docs) if i != gold]
            keep = [docs[gold]] + rng.sample(others, min(a.docs - 1, len(others)))
            rng.shuffle(keep)
            if a.task == "reconstruct":
                rows.append(reconstruct_rows(r.get("id", str(n)), keep, a.answer_words))
                continue
            rows.append([{"id": r.get("id", str(n)),
                         "input": "\n".join(passage(i + 1, d) for i, d in enumerate(keep)),
                         "prompt": r["prompt"], "answer": r["answer"],
                         "gold_document": keep.index(docs[gold])}])
    split = len(rows) - a.holdout
    for path, part in ((a.out_train, rows[:split]), (a.out_heldout, rows[split:])):
        with open(path, "w", encoding="utf-8") as f:
            for r in (r for group in part for r in group):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_train = sum(len(g) for g in rows[:split])
    n_held = sum(len(g) for g in rows[split:])
    print(f"{n_train} training rows, {n_held} held out")


if __name__ == "__main__":
    main()
