"""unit= / readable= (whole sentences, byte-exact) and tokenizer= (budgets in
a model's tokens) of comi.compress_ex, Compressor and ComiCompressor. The
sentence check is this file's own: each output line is cut into the longest
pieces that occur verbatim in the input, and each must sit there between
sentence boundaries. Token counts are checked against `comi tokenize`."""

import json
import os
import pickle
import re
import subprocess
import tempfile
import unittest

import comi

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("COMI_CLI") or os.path.join(REPO, "build", "comi")
DATA = os.environ.get("COMI_DATA") or os.path.join(REPO, "..", "shared", "data")
CANAL = open(os.path.join(REPO, "examples", "panama-canal.txt"), encoding="utf-8").read()
Q = "Who took over as chief engineer when John Stevens resigned?"

_STOP = re.compile(r"[.!?][\"')\]\u201d\u2019]*$")


def _starts(src, off):
    """A sentence starts at src[off]: text start, line start, or after . ! ?"""
    before = src[:off]
    stripped = before.rstrip(" \t\r\n")
    return not stripped or "\n" in before[len(stripped):] or bool(_STOP.search(stripped))


def _ends(src, start, end):
    """A sentence ends at src[end]: . ! ? before it, or the line end after it."""
    if _STOP.search(src[start:end]):
        return True
    rest = src[end:].lstrip(" \t\r")
    return not rest or rest[0] == "\n"


def _whole(docs, piece):
    found = False
    for src in docs:
        i = src.find(piece)
        while i >= 0:
            found = True
            if _starts(src, i) and _ends(src, i, i + len(piece)):
                return True, True
            i = src.find(piece, i + 1)
    return found, False


def whole_sentences(text, docs):
    """None when text is whole sentences of docs, else the offending piece."""
    for line in text.split("\n"):
        p = 0
        while p < len(line):
            while p < len(line) and line[p] == " ":
                p += 1
            if p >= len(line):
                break
            ends = [m.end() for m in re.finditer(r"[.!?][\"')\]\u201d\u2019]*(?= )", line[p:])]
            best = 0
            for q in [p + e for e in ends] + [len(line)]:
                found, whole = _whole(docs, line[p:q])
                if not found:
                    break
                if whole:
                    best = q
            if not best:
                return line[p:p + 160]
            p = best
    return None


def smollm2():
    path = os.environ.get("COMI_SMOLLM2")
    if not path:
        out = subprocess.run(["sh", "scripts/fetch_models.sh", "--quiet"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
        path = out.stdout.strip() if out.returncode == 0 else ""
    return path if path and os.path.exists(path) else None


def cli_tokens(model, text):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        out = subprocess.run([CLI, "tokenize", "--model", model, "--no-bos", "--file", f.name],
                             capture_output=True, text=True, timeout=120, check=True)
        return len(out.stdout.split())
    finally:
        os.unlink(f.name)


class TestUnits(unittest.TestCase):
    def test_sentence_whole_and_in_budget_on_data(self):
        for name in ("nq20.jsonl", "hotpotqa.jsonl", "multinews.jsonl"):
            path = os.path.join(DATA, name)
            self.assertTrue(os.path.exists(path), "shared data missing: %s" % path)
            with open(path, encoding="utf-8") as f:
                rows = [json.loads(next(f)) for _ in range(8)]
            c = comi.Compressor(ratio=8, unit="sentence")
            for r in rows:
                docs = r.get("documents") or [r["input"]]
                res = c.compress_documents(docs, r["prompt"])
                self.assertLessEqual(res.compressed_tokens, res.original_tokens // 8)
                self.assertGreater(res.compressed_tokens, 0)
                self.assertIsNone(whole_sentences(res.text, docs), (name, r["id"]))

    def test_checker_rejects_word_cuts(self):
        cut = comi.compress(CANAL, Q, ratio=12)
        self.assertIsNotNone(whole_sentences(cut, [CANAL]))
        self.assertIsNone(whole_sentences(comi.compress(CANAL, Q, ratio=12, unit="sentence"),
                                          [CANAL]))

    def test_forms_and_default(self):
        a = comi.compress(CANAL, Q, ratio=4, unit="sentence")
        self.assertEqual(comi.compress(CANAL, Q, ratio=4, readable=True), a)
        self.assertEqual(comi.compress(CANAL, Q, ratio=4, unit="readable"), a)
        self.assertEqual(comi.Compressor(ratio=4, unit="sentence").compress(CANAL, Q).text, a)
        self.assertEqual(comi.compress(CANAL, Q, ratio=4, unit="word"), comi.compress(CANAL, Q, ratio=4))
        self.assertNotEqual(comi.compress(CANAL, Q, ratio=4, unit="word"), a)
        self.assertIn("Goethals", a)
        clause = comi.compress_ex(CANAL, Q, ratio=4, unit="clause")
        self.assertLessEqual(clause.compressed_tokens, len(CANAL.split()) // 4)
        # the same text as the CLI
        out = subprocess.run([CLI, "compress", "--context", CANAL, "--question", Q, "--ratio", "4",
                              "--unit", "sentence"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout, a + "\n")
        # batch, pickling and the adapter carry the unit
        c = comi.Compressor(ratio=4, unit="sentence")
        self.assertEqual(c.compress_batch([CANAL], Q)[0].text, a)
        self.assertEqual(pickle.loads(pickle.dumps(c)).compress(CANAL, Q).text, a)
        self.assertEqual(c.options["unit"], "sentence")
        out = comi.ComiCompressor(ratio=4, unit="sentence").compress_documents([CANAL], Q)
        self.assertEqual(out[0].page_content,
                         comi.compress_documents([CANAL], Q, ratio=4, unit="sentence"))
        out = comi.ComiCompressor(ratio=4, readable=True, joint=False).compress_documents([CANAL], Q)
        self.assertEqual(out, [a])

    def test_answer_first_knob(self):
        text = ("The Panama Canal crosses the Isthmus of Panama. Ships avoid Cape Horn.\n\n"
                "Construction\nFrance was the first country to attempt the work, in 1881. "
                "When Stevens resigned in 1907, Roosevelt gave the job to the army engineer "
                "George Washington Goethals, who led the project until it was finished.")
        q = "Who led the project until it was finished?"
        out = comi.compress(text, q, ratio=2, answer_first=True)
        self.assertIn("George Washington Goethals, who led the project", out)
        self.assertTrue(comi.Compressor(ratio=2, answer_first=True)._params.answer_first)
        with self.assertRaises(TypeError):
            comi.compress(text, q, answer_first=1)

    def test_bad_values(self):
        with self.assertRaises(comi.InputError) as cm:
            comi.compress(CANAL, Q, unit="paragraph")
        self.assertIsInstance(cm.exception, ValueError)
        self.assertIn("'paragraph' is not sentence, clause, word", str(cm.exception))
        with self.assertRaises(TypeError):
            comi.compress(CANAL, Q, unit=2)
        with self.assertRaises(TypeError):
            comi.Compressor(readable="yes")
        with self.assertRaises(comi.InputError):
            comi.Compressor(readable=True, unit="word")
        with self.assertRaises(comi.InputError) as cm:
            comi.compress("One two three four five six. Seven eight nine ten eleven.", "six",
                          target_tokens=3, unit="sentence")
        self.assertIn("shorter than every sentence", str(cm.exception))
        with self.assertRaises(comi.InputError):
            comi.compress(CANAL, Q, ratio=2, target_tokens=3, unit="sentence")
        with self.assertRaises(TypeError) as cm:
            comi.Compressor(units="sentence")
        self.assertIn("unit", str(cm.exception))


class TestTokenizer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = smollm2()

    def setUp(self):
        if not self.model:
            self.fail("SmolLM2 cannot be had: scripts/fetch_models.sh failed and COMI_SMOLLM2 "
                      "is not set")

    def test_budgets_in_model_tokens(self):
        total = cli_tokens(self.model, CANAL)
        tok = comi.Tokenizer(self.model)
        for unit in ("word", "sentence"):
            for kw, budget in ((dict(ratio=4), total // 4), (dict(ratio=8), total // 8),
                               (dict(target_tokens=60), 60)):
                res = comi.compress_ex(CANAL, Q, unit=unit, tokenizer=tok, **kw)
                got = cli_tokens(self.model, res.text)
                self.assertEqual(res.original_tokens, total)
                self.assertEqual(res.compressed_tokens, got, (unit, kw))
                self.assertLessEqual(got, budget, (unit, kw))
                self.assertGreaterEqual(got, 0.7 * budget, (unit, kw))
                if unit == "sentence":
                    self.assertIsNone(whole_sentences(res.text, [CANAL]))
        # a path works too (loaded once), the Compressor pickles by the path
        c = comi.Compressor(ratio=4, tokenizer=self.model)
        self.assertEqual(c.compress(CANAL, Q).text,
                         comi.compress(CANAL, Q, ratio=4, tokenizer=tok))
        c2 = pickle.loads(pickle.dumps(comi.Compressor(ratio=4, tokenizer=tok)))
        self.assertEqual(c2.options["tokenizer"], self.model)
        self.assertEqual(c2.compress(CANAL, Q).text, c.compress(CANAL, Q).text)
        # the same text as the CLI's --tokenizer
        out = subprocess.run([CLI, "compress", "--context", CANAL, "--question", Q, "--ratio", "4",
                              "--tokenizer", self.model], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.stdout, c.compress(CANAL, Q).text + "\n")
        tok.close()
        with self.assertRaises(comi.InputError):
            comi.compress(CANAL, Q, tokenizer=tok)

    def test_missing_tokenizer(self):
        with self.assertRaises(comi.MissingFileError):
            comi.Tokenizer("/nonexistent/model.gguf")
        with self.assertRaises(TypeError):
            comi.compress(CANAL, Q, tokenizer=3)


if __name__ == "__main__":
    unittest.main()
