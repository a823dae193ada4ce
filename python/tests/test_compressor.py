"""comi.Compressor, compress_batch, the exception hierarchy and the package
surface (version, py.typed, type hints). Run by tests/cli/test_python.sh."""

import os
import pickle
import threading
import unittest

import comi
from comi import errors

CTX = ("The Eiffel Tower is in Paris. It was finished in 1889 for the World's Fair. "
       "Bananas are yellow and grow in bunches. The tower is 330 metres tall.")
Q = "When was the Eiffel Tower finished?"
CONTEXTS = [
    CTX,
    "Marie Curie won two Nobel prizes. She was born in Warsaw in 1867. Cats sleep a lot.",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi",
    "Water boils at 100 degrees Celsius at sea level. Ice melts at zero. Tea is popular.",
]
QUESTIONS = [Q, "Where was Marie Curie born?", "what comes after gamma?", "When does water boil?"]


class TestCompressor(unittest.TestCase):
    def test_same_as_compress_ex(self):
        for ratio in (2, 4):
            c = comi.Compressor(ratio=ratio)
            for ctx, q in zip(CONTEXTS, QUESTIONS):
                a = c.compress(ctx, q)
                b = comi.compress_ex(ctx, q, ratio=ratio)
                self.assertEqual(a.text, b.text)
                self.assertEqual(a.compressed_tokens, b.compressed_tokens)
                self.assertLessEqual(a.compressed_tokens, a.original_tokens // ratio)

    def test_knobs_change_the_params(self):
        c = comi.Compressor(target_tokens=5, coarse=False, temperature=0.25, min_unit_words=2)
        self.assertFalse(c._params.coarse)
        self.assertAlmostEqual(c._params.temperature, 0.25)
        self.assertEqual(c._params.min_unit_words, 2)
        self.assertEqual(c._params.target_tokens, 5)
        self.assertLessEqual(c.compress(CTX, Q).compressed_tokens, 5)
        with self.assertRaisesRegex(TypeError, "unknown option 'ratoi'"):
            comi.Compressor(ratoi=2)
        with self.assertRaisesRegex(TypeError, "coarse must be a bool"):
            comi.Compressor(coarse=1)
        with self.assertRaises(comi.InputError):
            comi.Compressor(ratio=2, target_tokens=3)

    def test_batch_equals_one_by_one(self):
        c = comi.Compressor(ratio=3)
        batch = c.compress_batch(CONTEXTS, QUESTIONS)
        self.assertEqual(len(batch), len(CONTEXTS))
        for r, ctx, q in zip(batch, CONTEXTS, QUESTIONS):
            one = c.compress(ctx, q)
            self.assertEqual(r.text, one.text)
            self.assertEqual((r.original_tokens, r.compressed_tokens),
                             (one.original_tokens, one.compressed_tokens))
        # one question for every context
        same = c.compress_batch(CONTEXTS, Q)
        self.assertEqual([r.text for r in same], [c.compress(x, Q).text for x in CONTEXTS])
        self.assertEqual(c.compress_batch([], Q), [])

    def test_batch_bad_items(self):
        c = comi.Compressor(ratio=0.5)  # refused by the library for every item
        with self.assertRaises(comi.InputError) as cm:
            c.compress_batch(CONTEXTS[:2], Q)
        self.assertIn("ratio", cm.exception.message)
        c = comi.Compressor(ratio=2)
        rows = [CTX, None, "bad\0text", CONTEXTS[1], ""]
        out = c.compress_batch(rows, Q, return_exceptions=True)
        self.assertEqual(len(out), len(rows))
        self.assertEqual(out[0].text, c.compress(CTX, Q).text)
        self.assertIsInstance(out[1], TypeError)
        self.assertIsInstance(out[2], comi.InputError)
        self.assertIn("NUL", str(out[2]))
        self.assertEqual(out[3].text, c.compress(CONTEXTS[1], Q).text)
        # the last item is whatever compress() gives for it, result or error
        try:
            expect = c.compress("", Q).text
        except comi.Error as e:
            self.assertIsInstance(out[4], type(e))
        else:
            self.assertEqual(out[4].text, expect)
        with self.assertRaises(TypeError):
            c.compress_batch(rows, Q)
        with self.assertRaisesRegex(comi.InputError, "2 contexts but 1 questions"):
            c.compress_batch(CONTEXTS[:2], [Q])
        with self.assertRaises(TypeError):
            c.compress_batch("one string", Q)

    def test_pickles_by_options(self):
        c = comi.Compressor(ratio=3, keep_titles=True, alpha=0.5)
        d = pickle.loads(pickle.dumps(c))
        self.assertIsInstance(d, comi.Compressor)
        self.assertEqual(d.options, c.options)
        self.assertEqual(d.compress(CTX, Q).text, c.compress(CTX, Q).text)
        enc = comi.Encoder("lexical")
        e = pickle.loads(pickle.dumps(comi.Compressor(ratio=2, encoder=enc)))
        self.assertEqual(e.options["encoder"], "lexical")
        enc.close()

    def test_threads_share_one_compressor(self):
        c = comi.Compressor(ratio=2)
        expect = [c.compress(x, q).text for x, q in zip(CONTEXTS, QUESTIONS)]
        got, errs = [], []

        def work():
            try:
                for _ in range(20):
                    got.append([r.text for r in c.compress_batch(CONTEXTS, QUESTIONS)])
            except Exception as e:  # reported below
                errs.append(e)

        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errs, [])
        self.assertEqual(len(got), 80)
        for g in got:
            self.assertEqual(g, expect)


class TestErrors(unittest.TestCase):
    def test_hierarchy(self):
        self.assertTrue(issubclass(comi.InputError, comi.Error))
        self.assertTrue(issubclass(comi.InputError, ValueError))
        self.assertTrue(issubclass(comi.LimitError, MemoryError))
        self.assertTrue(issubclass(comi.MissingFileError, FileNotFoundError))
        self.assertTrue(issubclass(comi.MissingFileError, comi.FileError))
        self.assertTrue(issubclass(comi.FileError, OSError))
        self.assertTrue(issubclass(comi.NotSupportedError, NotImplementedError))
        self.assertIs(comi.ComiError, comi.Error)
        for cls in (comi.InputError, comi.LimitError, comi.FileError, comi.MissingFileError,
                    comi.NotSupportedError):
            self.assertTrue(issubclass(cls, comi.Error), cls)

    def test_library_statuses_map(self):
        self.assertIsInstance(errors.error_for_status(1, "x"), comi.InputError)
        self.assertIsInstance(errors.error_for_status(3, "x"), comi.InputError)
        self.assertIsInstance(errors.error_for_status(5, "x"), comi.LimitError)
        self.assertIsInstance(errors.error_for_status(6, "x"), comi.LimitError)
        self.assertIsInstance(errors.error_for_status(2, "x", "/no/such/file"),
                              comi.MissingFileError)
        self.assertNotIsInstance(errors.error_for_status(2, "x", os.getcwd()),
                                 comi.MissingFileError)
        self.assertIs(type(errors.error_for_status(7, "x")), comi.Error)

    def test_missing_files(self):
        with self.assertRaises(FileNotFoundError) as cm:
            comi.Encoder("vectors:/no/such/vectors.txt")
        self.assertIsInstance(cm.exception, comi.MissingFileError)
        self.assertIn("/no/such/vectors.txt", str(cm.exception))
        with self.assertRaises(FileNotFoundError):
            comi.Model("/no/such/model.gguf")

    def test_library_refusal_is_input_error(self):
        with self.assertRaises(ValueError) as cm:
            comi.compress(CTX, Q, ratio=0.5)
        self.assertIsInstance(cm.exception, comi.InputError)
        self.assertEqual(cm.exception.status_name, "invalid argument")

    def test_errors_pickle(self):
        for e in (comi.InputError("bad"), comi.LimitError("big"), comi.Error(7, "oops"),
                  comi.MissingFileError("gone", 2, "/x")):
            f = pickle.loads(pickle.dumps(e))
            self.assertIs(type(f), type(e))
            self.assertEqual((f.status, f.message), (e.status, e.message))


class TestSurface(unittest.TestCase):
    def test_version_from_the_header(self):
        self.assertEqual(comi.__version__, comi.version())

    def test_typed_and_documented(self):
        here = os.path.dirname(os.path.abspath(comi.__file__))
        self.assertTrue(os.path.exists(os.path.join(here, "py.typed")))
        for obj in (comi.Compressor, comi.Compressor.compress, comi.Compressor.compress_batch,
                    comi.compress, comi.Error, comi.InputError):
            self.assertTrue(obj.__doc__ and len(obj.__doc__) > 30, obj)
        hints = comi.Compressor.compress.__annotations__
        self.assertIn("return", hints)
        self.assertIn("context", hints)


if __name__ == "__main__":
    unittest.main()
