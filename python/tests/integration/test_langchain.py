"""comi.langchain.ComiCompressor against the real langchain-core (and the
ContextualCompressionRetriever of langchain / langchain-classic)."""

import unittest

import comi
from corpus import QUESTIONS, rows
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever

from comi.langchain import ComiCompressor

try:
    from langchain_classic.retrievers import ContextualCompressionRetriever
except ImportError:
    try:
        from langchain.retrievers import ContextualCompressionRetriever
    except ImportError:
        ContextualCompressionRetriever = None


class FixedRetriever(BaseRetriever):
    docs: list

    def _get_relevant_documents(self, query, *, run_manager: CallbackManagerForRetrieverRun):
        return list(self.docs)


def docs(n=5):
    return [Document(page_content=r["text"], id="doc-%d" % r["id"],
                     metadata={"source": "panama-%d.txt" % r["id"], "rank": r["id"]})
            for r in rows(n)]


class TestLangChain(unittest.TestCase):
    def test_is_a_document_compressor(self):
        c = ComiCompressor(ratio=4)
        self.assertIsInstance(c, BaseDocumentCompressor)
        self.assertEqual(c.options, {"ratio": 4})
        self.assertEqual(c.compressor.options["ratio"], 4)

    def test_each_document_keeps_its_metadata(self):
        q = QUESTIONS[0]
        inputs = docs()
        out = ComiCompressor(ratio=3, keep_titles=False).compress_documents(inputs, q)
        self.assertEqual(len(out), len(inputs))
        for d, o in zip(inputs, out):
            self.assertIsInstance(o, Document)
            self.assertEqual(o.metadata, d.metadata)
            self.assertEqual(o.id, d.id)
            self.assertEqual(o.page_content,
                             comi.compress(d.page_content, q, ratio=3, encoder=None))
            self.assertLess(len(o.page_content.split()), len(d.page_content.split()))
        # the inputs are untouched
        self.assertEqual([d.page_content for d in inputs], [d.page_content for d in docs()])
        self.assertEqual(ComiCompressor(ratio=3).compress_documents([], q), [])

    def test_unit_sentence_passes_through(self):
        q = QUESTIONS[0]
        c = ComiCompressor(ratio=2, unit="sentence")
        self.assertEqual(c.compressor.options["unit"], "sentence")
        for d, o in zip(docs(), c.compress_documents(docs(), q)):
            self.assertEqual(o.page_content,
                             comi.compress(d.page_content, q, ratio=2, unit="sentence"))
        readable = ComiCompressor(ratio=2, readable=True).compress_documents(docs(), q)
        self.assertEqual([o.page_content for o in readable],
                         [o.page_content for o in c.compress_documents(docs(), q)])

    def test_bad_options_and_refusals(self):
        with self.assertRaises(TypeError):
            ComiCompressor(ratoi=3)
        with self.assertRaises(comi.InputError):
            ComiCompressor(ratio=0.5).compress_documents(docs(1), QUESTIONS[0])

    def test_in_a_contextual_compression_retriever(self):
        if ContextualCompressionRetriever is None:
            self.fail("neither langchain-classic nor langchain provides "
                      "ContextualCompressionRetriever (the CI script installs one)")
        q = QUESTIONS[2]
        base = FixedRetriever(docs=docs(4))
        r = ContextualCompressionRetriever(base_compressor=ComiCompressor(target_tokens=12),
                                           base_retriever=base)
        got = r.invoke(q)
        self.assertEqual(len(got), 4)
        for d, o in zip(docs(4), got):
            self.assertEqual(o.metadata, d.metadata)
            self.assertLessEqual(len(o.page_content.split()), 12)
            self.assertEqual(o.page_content, comi.compress(d.page_content, q, target_tokens=12))


if __name__ == "__main__":
    unittest.main()
