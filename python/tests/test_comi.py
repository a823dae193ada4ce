"""Tests of the comi Python package (ctypes over libcomi.so). Run by
tests/cli/test_python.sh through python/tests/run.py; COMI_CLI names the
comi binary for the same-as-the-CLI checks."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest

import comi

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("COMI_CLI") or os.path.join(REPO, "build", "comi")
DATA = os.environ.get("COMI_DATA") or os.path.join(REPO, "..", "shared", "data")

CTX = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi")


def cli_has_compress():
    try:
        return subprocess.run([CLI, "compress", "--help"], capture_output=True,
                              timeout=20).returncode == 0
    except OSError:
        return False


def nq20_first():
    path = os.path.join(DATA, "nq20.jsonl")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.loads(f.readline())


class TestBasics(unittest.TestCase):
    def test_version_matches_cli(self):
        out = subprocess.run([CLI, "version"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.stdout.strip(), "comi " + comi.version())
        self.assertRegex(comi.version(), r"^\d+\.\d+\.\d+$")

    def test_library_path(self):
        self.assertTrue(os.path.exists(comi.library_path()), comi.library_path())

    def test_bad_library_path_is_a_clear_import_error(self):
        env = dict(os.environ, COMI_LIBRARY="/nonexistent/libcomi.so")
        code = "import comi\ntry:\n    comi.version()\nexcept ImportError as e:\n    print(e)\n"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60,
                             cwd=os.path.join(REPO, "python"))
        self.assertIn("/nonexistent/libcomi.so", out.stdout)
        self.assertIn("COMI_LIBRARY", out.stdout)

    def test_struct_layouts_match_header(self):
        """The ctypes structures must list the leading C fields in order."""
        header = os.path.join(REPO, "include", "comi.h")
        if not os.path.exists(header):
            self.skipTest("no include/comi.h beside the package")
        src = open(header, encoding="utf-8").read()
        for cname, pyname in (("comi_ctx_params", "CtxParams"),
                              ("comi_text_params", "TextParams"),
                              ("comi_text_result", "TextResult"),
                              ("comi_merge_params", "MergeParams"),
                              ("comi_pipeline_load_params", "PipelineLoadParams"),
                              ("comi_pipeline_info", "PipelineInfo"),
                              ("comi_answer_params", "AnswerParams"),
                              ("comi_answer_result", "AnswerResult"),
                              ("comi_text_result", "TextResultExact")):
            body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (cname, cname), src, re.S)
            self.assertIsNotNone(body, cname)
            text = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
            fields = []
            for decl in text.split(";"):
                parts = [p.strip() for p in decl.split(",") if p.strip()]
                parts = [re.sub(r"\[[^\]]*\]$", "", p).strip() for p in parts]  # arrays
                fields += [re.findall(r"(\w+)\s*$", p)[0] for p in parts]
            py = [f[0] for f in getattr(comi._lib, pyname)._fields_ if f[0] != "_reserved"]
            if pyname in ("MergeParams", "CtxParams", "TextResultExact"):  # exactly
                self.assertEqual(fields, py, cname)
            else:
                self.assertEqual(fields[:len(py)], py, cname)


class TestCompress(unittest.TestCase):
    def test_ratio(self):
        res = comi.compress_ex(CTX, "which letter is kappa?", ratio=2)
        self.assertIsInstance(res, comi.CompressResult)
        self.assertEqual(res.original_tokens, 16)
        self.assertGreaterEqual(res.compressed_tokens, 1)
        self.assertLessEqual(res.compressed_tokens, 8)
        self.assertEqual(len(res.text.split()), res.compressed_tokens)
        self.assertAlmostEqual(res.ratio, 16 / res.compressed_tokens)
        self.assertGreaterEqual(res.ms, 0)
        for w in res.text.split():
            self.assertIn(w, CTX.split())
        self.assertEqual(comi.compress(CTX, "which letter is kappa?", ratio=2), res.text)

    def test_target_tokens(self):
        res = comi.compress_ex(CTX, "kappa", target_tokens=3)
        self.assertEqual(res.original_tokens, 16)
        self.assertLessEqual(res.compressed_tokens, 3)
        self.assertGreaterEqual(res.compressed_tokens, 1)

    def test_documents(self):
        docs = ["the cat sat on the mat", "paris is the capital of france"]
        res = comi.compress_documents_ex(docs, "what is the capital of france?", ratio=2)
        self.assertEqual(res.original_tokens, 12)
        self.assertLessEqual(res.compressed_tokens, 6)
        self.assertEqual(comi.compress_documents(docs, "what is the capital of france?",
                                                 ratio=2), res.text)

    def test_knobs_by_name(self):
        ctx = "Alpha beta gamma delta. Epsilon zeta eta theta iota."
        a = comi.compress_ex(ctx, "zeta", target_tokens=3, lead_weight=0.0, summary=0)
        self.assertEqual(a.compressed_tokens, 3)
        self.assertIn("zeta", a.text)
        with self.assertRaises(TypeError):
            comi.compress(ctx, "zeta", target_tokens=3, lead=1.0)

    def test_compress_prompt_llmlingua(self):
        docs = ["Paris is the capital of France. It lies on the Seine.",
                "Mount Everest is 8,849 metres high. It is in the Himalayas."]
        out = comi.compress_prompt(docs, question="How high is Everest?", rate=0.5)
        self.assertEqual(set(out), {"compressed_prompt", "origin_tokens", "compressed_tokens",
                                    "ratio", "rate"})
        self.assertEqual(out["origin_tokens"], 22)
        self.assertLessEqual(out["compressed_tokens"], 11)
        self.assertTrue(out["compressed_prompt"].endswith("How high is Everest?"))
        self.assertIn("8,849", out["compressed_prompt"])
        self.assertTrue(out["ratio"].endswith("x") and out["rate"].endswith("%"))
        t = comi.compress_prompt(" ".join(docs), target_token=5)  # no question: summary
        self.assertEqual(t["compressed_tokens"], 5)
        with self.assertRaises(Exception):
            comi.compress_prompt(docs, question="q", rate=0)

    def test_unicode_round_trip(self):
        ctx = "café naïve 日本 \U0001F600 end"
        res = comi.compress_ex(ctx, "café", ratio=1)
        self.assertEqual(res.original_tokens, 6)  # 日本: one word per CJK letter
        for w in res.text.split():
            self.assertIn(w, ctx.split())

    def test_nq20_at_8x(self):
        ex = nq20_first()
        if ex is None:
            self.skipTest("no nq20.jsonl in %s" % DATA)
        res = comi.compress_ex(ex["input"], ex["prompt"], ratio=8)
        n = len(ex["input"].split())
        self.assertEqual(res.original_tokens, n)
        self.assertGreater(res.compressed_tokens, 0)
        self.assertLessEqual(res.compressed_tokens, n // 8)

    def test_same_output_as_cli(self):
        if not cli_has_compress():
            self.skipTest("comi compress is not built yet")
        ex = nq20_first()
        cases = [(CTX, "which letter is kappa?", ["--ratio", "2"], dict(ratio=2))]
        if ex is not None:
            cases.append((ex["input"], ex["prompt"], ["--ratio", "8"], dict(ratio=8)))
            cases.append((ex["input"], ex["prompt"], ["--target-tokens", "100"],
                          dict(target_tokens=100)))
        for ctx, q, flags, kw in cases:
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                             encoding="utf-8") as f:
                f.write(ctx)
            try:
                out = subprocess.run([CLI, "compress", "--question", q, "--context-file",
                                      f.name] + flags, capture_output=True, text=True,
                                     timeout=60)
            finally:
                os.unlink(f.name)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(comi.compress(ctx, q, **kw) + "\n", out.stdout, flags)

    def test_threads_agree(self):
        want = comi.compress(CTX, "kappa", ratio=2)
        got, errors = [], []

        def work():
            try:
                for _ in range(20):
                    got.append(comi.compress(CTX, "kappa", ratio=2))
            except Exception as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=work) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(got), 160)
        self.assertEqual(set(got), {want})


class TestLimits(unittest.TestCase):
    def tearDown(self):
        comi.set_limits(max_context_tokens=0, max_memory=0)

    def test_defaults(self):
        self.assertEqual(comi.get_limits(), {"max_context_tokens": 0, "max_memory": 0})

    def test_context_tokens(self):
        comi.set_limits(max_context_tokens=15)
        self.assertEqual(comi.get_limits()["max_context_tokens"], 15)
        with self.assertRaises(comi.LimitError) as cm:
            comi.compress(CTX, "kappa", ratio=2)
        self.assertIsInstance(cm.exception, comi.ComiError)
        self.assertEqual(cm.exception.status, 6)
        self.assertEqual(cm.exception.status_name, "limit exceeded")
        self.assertIn("16", cm.exception.message)
        self.assertIn("15", cm.exception.message)
        comi.set_limits(max_context_tokens=16)  # exactly the context: allowed
        self.assertTrue(comi.compress(CTX, "kappa", ratio=2))

    def test_memory(self):
        comi.set_limits(max_memory=1000)
        with self.assertRaisesRegex(comi.LimitError, "more than the max_bytes limit of 1000"):
            comi.compress(CTX, "kappa", ratio=2)
        comi.set_limits(max_memory=0)
        self.assertTrue(comi.compress(CTX, "kappa", ratio=2))

    def test_other_threads_see_the_limits(self):
        comi.compress(CTX, "kappa", ratio=2)  # this thread's context exists already
        comi.set_limits(max_context_tokens=3)
        errors = []

        def work():
            try:
                comi.compress(CTX, "kappa", ratio=2)
            except comi.LimitError as e:
                errors.append(e)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        self.assertEqual(len(errors), 1)
        with self.assertRaises(comi.LimitError):
            comi.compress(CTX, "kappa", ratio=2)

    def test_none_keeps(self):
        comi.set_limits(max_context_tokens=7, max_memory=123456)
        comi.set_limits(max_memory=None)
        self.assertEqual(comi.get_limits(), {"max_context_tokens": 7, "max_memory": 123456})

    def test_bad_values(self):
        with self.assertRaisesRegex(ValueError, "max_context_tokens must be in"):
            comi.set_limits(max_context_tokens=-1)
        with self.assertRaisesRegex(ValueError, "max_memory must be in"):
            comi.set_limits(max_memory=1 << 64)
        with self.assertRaisesRegex(TypeError, "max_memory must be an int"):
            comi.set_limits(max_memory="1G")
        with self.assertRaisesRegex(TypeError, "max_context_tokens must be an int"):
            comi.set_limits(max_context_tokens=True)
        self.assertEqual(comi.get_limits(), {"max_context_tokens": 0, "max_memory": 0})


class TestErrors(unittest.TestCase):
    def test_ratio_below_one_is_a_comi_error(self):
        with self.assertRaises(comi.ComiError) as cm:
            comi.compress(CTX, "q", ratio=0.5)
        self.assertEqual(cm.exception.status, 1)
        self.assertEqual(cm.exception.status_name, "invalid argument")
        self.assertTrue(cm.exception.message)
        self.assertIn(cm.exception.message, str(cm.exception))

    def test_both_budgets(self):
        with self.assertRaisesRegex(ValueError, "not both"):
            comi.compress(CTX, "q", ratio=2, target_tokens=3)

    def test_target_tokens_nonpositive(self):
        with self.assertRaisesRegex(ValueError, "> 0"):
            comi.compress(CTX, "q", target_tokens=0)

    def test_types(self):
        with self.assertRaisesRegex(TypeError, "context must be a str"):
            comi.compress(b"bytes", "q")
        with self.assertRaisesRegex(TypeError, "question must be a str"):
            comi.compress(CTX, None)
        with self.assertRaisesRegex(TypeError, "ratio must be a number"):
            comi.compress(CTX, "q", ratio="8")
        with self.assertRaisesRegex(TypeError, "target_tokens must be an int"):
            comi.compress(CTX, "q", target_tokens=2.0)
        with self.assertRaisesRegex(TypeError, "list of str"):
            comi.compress_documents("one string", "q")
        with self.assertRaisesRegex(TypeError, r"documents\[1\] must be a str"):
            comi.compress_documents(["a", 5], "q")
        with self.assertRaisesRegex(TypeError, "encoder must be"):
            comi.compress(CTX, "q", encoder=3)

    def test_nul_and_surrogates(self):
        with self.assertRaisesRegex(ValueError, "NUL"):
            comi.compress("a\0b", "q")
        with self.assertRaisesRegex(ValueError, "not valid Unicode"):
            comi.compress("a \ud800 b", "q")

    def test_bad_encoder_spec(self):
        with self.assertRaises(comi.ComiError) as cm:
            comi.Encoder("vectors:/nonexistent/vectors.txt")
        self.assertIn("/nonexistent/vectors.txt", str(cm.exception))
        with self.assertRaises(comi.ComiError):
            comi.compress(CTX, "q", encoder="vectors:/nonexistent/vectors.txt")


class TestEncoder(unittest.TestCase):
    def test_lexical_encoder_object(self):
        with comi.Encoder("lexical") as enc:
            self.assertEqual(enc.spec, "lexical")
            a = comi.compress(CTX, "kappa", ratio=4, encoder=enc)
            b = comi.compress(CTX, "kappa", ratio=4, encoder="lexical")
            c = comi.compress(CTX, "kappa", ratio=4)
            self.assertEqual(a, b)
            self.assertEqual(a, c)
        with self.assertRaisesRegex(ValueError, "closed"):
            comi.compress(CTX, "kappa", encoder=enc)
        enc.close()  # idempotent


GOLDEN = os.environ.get("COMI_GOLDEN") or os.path.join(REPO, "..", "shared", "golden")
TINY = os.path.join(GOLDEN, "forward", "models", "tiny-llama-spm.gguf")
TINY_HF = os.path.join(GOLDEN, "forward", "models", "tiny-llama-spm.hf")
ANS_CTX = "The Eiffel Tower is in Paris. It was finished in 1889."
ANS_Q = "When was the tower finished?"


@unittest.skipUnless(os.path.exists(TINY), "no golden model " + TINY)
class TestModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = comi.Model(TINY)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_info(self):
        info = self.model.info
        self.assertIn("tiny-llama-spm", info["description"])
        self.assertEqual(info["encoder_n_layer"], 3)
        self.assertEqual(info["encoder_layers"], 3)
        self.assertEqual(info["d_encoder"], 64)
        self.assertTrue(info["shared_model"])
        self.assertEqual(info["fusion_layers"], 0)

    def test_answer(self):
        res = self.model.answer_ex(ANS_CTX, ANS_Q)
        self.assertIsInstance(res, comi.AnswerResult)
        self.assertTrue(1 <= len(res.ids) <= 20)
        self.assertTrue(all(0 <= i < 32000 for i in res.ids))
        self.assertGreater(res.context_tokens, 5)
        self.assertGreaterEqual(res.memory_vectors, 1)
        self.assertEqual(res.encoder_layers, 3)
        self.assertGreater(res.ms, 0)
        self.assertEqual(set(res.ms_stages), {"tokenize", "encode", "merge", "fuse", "prefill",
                                              "generate"})
        self.assertEqual(self.model.answer(ANS_CTX, ANS_Q), res.text)
        self.assertEqual(self.model.answer_ex(ANS_CTX, ANS_Q).ids, res.ids)

    def test_same_ids_as_cli(self):
        out = subprocess.run([CLI, "answer", "--model", TINY, "--context", ANS_CTX,
                              "--question", ANS_Q, "--print-ids", "--merge-size", "4",
                              "--max-new-tokens", "6"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0 and "unknown command" in out.stderr:
            self.skipTest("comi answer is not built")
        self.assertEqual(out.returncode, 0, out.stderr)
        res = self.model.answer_ex(ANS_CTX, ANS_Q, merge_size=4, max_new_tokens=6)
        self.assertIn(" ".join(map(str, res.ids)), out.stdout.split("\n"))
        self.assertLessEqual(len(res.ids), 6)

    def test_documents_and_knobs(self):
        res = self.model.answer_ex(["The Eiffel Tower is in Paris.", "It was finished in 1889."],
                                   "When?", merge_size=2, max_new_tokens=4, encoder_layers=2)
        self.assertTrue(1 <= len(res.ids) <= 4)
        self.assertEqual(res.encoder_layers, 2)
        self.assertGreaterEqual(res.memory_vectors, 2)
        empty = self.model.answer_ex("", "What is it?", max_new_tokens=3)
        self.assertEqual(empty.context_tokens, 0)
        self.assertEqual(empty.memory_vectors, 0)

    def test_errors(self):
        with self.assertRaises(comi.ComiError) as cm:
            self.model.answer(ANS_CTX, "")
        self.assertIn("question", str(cm.exception))
        with self.assertRaisesRegex(ValueError, "merge_size"):
            self.model.answer(ANS_CTX, ANS_Q, merge_size=0)
        with self.assertRaisesRegex(TypeError, "max_new_tokens must be an int"):
            self.model.answer(ANS_CTX, ANS_Q, max_new_tokens=2.5)
        with self.assertRaises(comi.ComiError):
            comi.Model("/nonexistent/model.gguf")

    def test_threads_agree(self):
        want = self.model.answer_ex(ANS_CTX, ANS_Q, max_new_tokens=5).ids
        got, errors = [], []

        def work():
            try:
                got.append(self.model.answer_ex(ANS_CTX, ANS_Q, max_new_tokens=5).ids)
            except Exception as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(got, [want] * 4)

    def test_hf_directory_gives_the_same_answer(self):
        if not os.path.isdir(TINY_HF):
            self.skipTest("no " + TINY_HF)
        # the HF copy has no tokenizer.json: take the GGUF's
        with comi.Model(TINY_HF, tokenizer=TINY) as hf:
            self.assertEqual(hf.answer_ex(ANS_CTX, ANS_Q, max_new_tokens=5).ids,
                             self.model.answer_ex(ANS_CTX, ANS_Q, max_new_tokens=5).ids)
        with self.assertRaisesRegex(ValueError, "closed"):
            hf.answer(ANS_CTX, ANS_Q)


def _need(test, fn):
    """The bytes the library says fn's call needs, run under a 1-byte limit."""
    comi.set_limits(max_memory=1)
    try:
        with test.assertRaises(comi.LimitError) as cm:
            fn()
    finally:
        comi.set_limits(max_memory=0)
    m = re.search(r"needs (\d+) bytes", str(cm.exception))
    return int(m.group(1)) if m else None


@unittest.skipUnless(os.path.exists(TINY), "no golden model " + TINY)
class TestKvType(unittest.TestCase):
    """kv_type="f16" (comi_ctx_params.kv_type, the CLI's --kv-type) reaches
    the library: its memory check sees the half cache (the need drops, so a
    limit between the two needs refuses f32 and lets f16 run), and answers
    are the CLI's --kv-type f16 ones."""

    def tearDown(self):
        comi.set_limits(max_memory=0)

    def test_bad_values(self):
        with self.assertRaisesRegex(comi.InputError, "kv_type must be 'f32' or 'f16', got 'f8'"):
            comi.Compressor(encoder=TINY, kv_type="f8")
        with self.assertRaisesRegex(TypeError, "kv_type must be a str"):
            comi.Compressor(encoder=TINY, kv_type=16)
        with self.assertRaisesRegex(comi.InputError, "needs a model encoder"):
            comi.Compressor(kv_type="f16")
        with self.assertRaisesRegex(comi.InputError, "needs a model encoder"):
            comi.compress(CTX, "kappa", kv_type="f16")
        with self.assertRaisesRegex(comi.InputError, "kv_type must be 'f32' or 'f16'"):
            comi.Model(TINY, kv_type="half")
        comi.Compressor(kv_type="f32")  # the default, with any encoder

    def test_compressor_f16(self):
        c32 = comi.Compressor(ratio=2, encoder=TINY)
        c16 = comi.Compressor(ratio=2, encoder=TINY, kv_type="F16")
        n32 = _need(self, lambda: c32.compress(ANS_CTX, ANS_Q))
        n16 = _need(self, lambda: c16.compress(ANS_CTX, ANS_Q))
        self.assertIsNotNone(n32)
        self.assertIsNotNone(n16)
        self.assertLess(n16, n32)
        want = c16.compress(ANS_CTX, ANS_Q).text
        self.assertTrue(want)
        comi.set_limits(max_memory=(n16 + n32) // 2)
        with self.assertRaises(comi.LimitError):
            c32.compress(ANS_CTX, ANS_Q)
        self.assertEqual(c16.compress(ANS_CTX, ANS_Q).text, want)
        self.assertEqual(c16.compress_batch([ANS_CTX], ANS_Q)[0].text, want)
        self.assertEqual(comi.compress(ANS_CTX, ANS_Q, ratio=2, encoder=TINY, kv_type="f16"), want)
        comi.set_limits(max_memory=0)
        # pickles by its options, kv_type included
        import pickle
        back = pickle.loads(pickle.dumps(c16))
        self.assertEqual(back.options["kv_type"], "F16")
        self.assertEqual(back.compress(ANS_CTX, ANS_Q).text, want)

    def test_model_f16(self):
        with comi.Model(TINY) as m32, comi.Model(TINY, kv_type="f16") as m16:
            self.assertEqual(m16.kv_type, "f16")
            self.assertIn("kv_type='f16'", repr(m16))
            n32 = _need(self, lambda: m32.answer(ANS_CTX, ANS_Q))
            n16 = _need(self, lambda: m16.answer(ANS_CTX, ANS_Q))
            self.assertIsNotNone(n32)
            self.assertIsNotNone(n16)
            self.assertLess(n16, n32)
            want = m16.answer_ex(ANS_CTX, ANS_Q, merge_size=4, max_new_tokens=6).ids
            comi.set_limits(max_memory=(n16 + n32) // 2)
            with self.assertRaises(comi.LimitError):
                m32.answer(ANS_CTX, ANS_Q)
            self.assertEqual(m16.answer_ex(ANS_CTX, ANS_Q, merge_size=4, max_new_tokens=6).ids,
                             want)
            comi.set_limits(max_memory=0)
        out = subprocess.run([CLI, "answer", "--model", TINY, "--context", ANS_CTX,
                              "--question", ANS_Q, "--print-ids", "--merge-size", "4",
                              "--max-new-tokens", "6", "--kv-type", "f16"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(" ".join(map(str, want)), out.stdout.split("\n"))


class Doc:  # LangChain-shaped
    def __init__(self, page_content, metadata):
        self.page_content = page_content
        self.metadata = metadata


class Node:  # LlamaIndex-shaped
    def __init__(self, text, id_):
        self.text = text
        self.id_ = id_


class Scored:  # LlamaIndex NodeWithScore-shaped
    def __init__(self, node, score):
        self.node = node
        self.score = score


class TestAdapter(unittest.TestCase):
    docs = ["the cat sat on the mat all day long",
            "paris is the capital and largest city of france"]
    q = "what is the capital of france?"

    def test_joint_strings(self):
        out = comi.ComiCompressor(ratio=2).compress_documents(self.docs, self.q)
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0].page_content, comi.compress_documents(self.docs, self.q, ratio=2))
        self.assertEqual(out[0].text, out[0].page_content)
        self.assertEqual(out[0].metadata["original_tokens"], 18)
        self.assertEqual(out[0].metadata["n_documents"], 2)

    def test_joint_objects(self):
        docs = [Doc(self.docs[0], {"id": 1}), Node(self.docs[1], "n2")]
        out = comi.ComiCompressor(target_tokens=4).compress_documents(docs, self.q)
        self.assertEqual(out[0].page_content,
                         comi.compress_documents(self.docs, self.q, target_tokens=4))

    def test_per_document_keeps_types_and_metadata(self):
        docs = [Doc(self.docs[0], {"id": 1}), Doc(self.docs[1], {"id": 2})]
        out = comi.ComiCompressor(ratio=2, joint=False).compress_documents(docs, self.q)
        self.assertTrue(all(isinstance(d, Doc) for d in out))
        for d in out:
            src = docs[d.metadata["id"] - 1]
            self.assertEqual(d.page_content, comi.compress(src.page_content, self.q, ratio=2))
        self.assertEqual(docs[0].page_content, self.docs[0])  # inputs untouched
        strs = comi.ComiCompressor(ratio=2, joint=False).compress_documents(self.docs, self.q)
        self.assertTrue(all(isinstance(s, str) for s in strs))

    def test_llamaindex_shapes(self):
        nodes = [Scored(Node(t, i), 0.5) for i, t in enumerate(self.docs)]
        comp = comi.ComiCompressor(ratio=2, joint=False)
        out = comp.postprocess_nodes(nodes, query_str=self.q)
        self.assertTrue(all(isinstance(n, Scored) and isinstance(n.node, Node) for n in out))
        for n in out:
            self.assertEqual(n.node.text, comi.compress(self.docs[n.node.id_], self.q, ratio=2))
        self.assertEqual(nodes[0].node.text, self.docs[0])

    def test_bad_documents(self):
        comp = comi.ComiCompressor(ratio=2)
        self.assertEqual(comp.compress_documents([], self.q), [])
        with self.assertRaisesRegex(TypeError, r"documents\[1\]"):
            comp.compress_documents(["ok", object()], self.q)
        with self.assertRaises(TypeError):
            comp.compress_documents("a string", self.q)


if __name__ == "__main__":
    unittest.main()
