"""A deterministic synthetic corpus for the integration tests: contexts cut
from examples/panama-canal.txt, a few questions, and ids."""

import os
import random

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                     ".."))
QUESTIONS = [
    "Who took over as chief engineer when John Stevens resigned?",
    "When did the United States buy the French equipment?",
    "Who was the first American chief engineer?",
    "What separated from Colombia?",
]


def sentences():
    with open(os.path.join(REPO, "examples", "panama-canal.txt"), encoding="utf-8") as f:
        text = f.read()
    parts = [s.strip() for s in text.replace("\n", " ").split(". ") if s.strip()]
    return [p if p.endswith(".") else p + "." for p in parts]


def rows(n, seed=7):
    """n dicts {id, text, question}: 3 to 12 random sentences each."""
    rng = random.Random(seed)
    sents = sentences()
    out = []
    for i in range(n):
        k = rng.randint(3, 12)
        out.append({"id": i, "text": " ".join(rng.choice(sents) for _ in range(k)),
                    "question": QUESTIONS[i % len(QUESTIONS)]})
    return out
