"""comi.llama_index.ComiPostprocessor against the real llama-index-core."""

import unittest

import comi
from corpus import QUESTIONS, rows
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from comi.llama_index import ComiPostprocessor


def nodes(n=5):
    return [NodeWithScore(node=TextNode(text=r["text"], id_="node-%d" % r["id"],
                                        metadata={"file": "p%d.txt" % r["id"], "page": r["id"]}),
                          score=1.0 / (1 + r["id"]))
            for r in rows(n)]


class TestLlamaIndex(unittest.TestCase):
    def test_is_a_node_postprocessor(self):
        p = ComiPostprocessor(ratio=4)
        self.assertIsInstance(p, BaseNodePostprocessor)
        self.assertEqual(p.class_name(), "ComiPostprocessor")

    def test_nodes_keep_metadata_id_and_score(self):
        q = QUESTIONS[1]
        inputs = nodes()
        for call in ("query_str", "query_bundle"):
            p = ComiPostprocessor(ratio=3)
            if call == "query_str":
                out = p.postprocess_nodes(inputs, query_str=q)
            else:
                out = p.postprocess_nodes(inputs, query_bundle=QueryBundle(q))
            self.assertEqual(len(out), len(inputs))
            for a, b in zip(inputs, out):
                self.assertEqual(b.node.metadata, a.node.metadata)
                self.assertEqual(b.node.node_id, a.node.node_id)
                self.assertEqual(b.score, a.score)
                self.assertEqual(b.node.get_content(),
                                 comi.compress(a.node.get_content(), q, ratio=3))
        self.assertEqual([n.node.get_content() for n in inputs],
                         [n.node.get_content() for n in nodes()])

    def test_unit_sentence_passes_through(self):
        q = QUESTIONS[1]
        p = ComiPostprocessor(ratio=2, unit="sentence")
        self.assertEqual(p.compressor.options["unit"], "sentence")
        for a, b in zip(nodes(), p.postprocess_nodes(nodes(), query_str=q)):
            self.assertEqual(b.node.get_content(),
                             comi.compress(a.node.get_content(), q, ratio=2, unit="sentence"))

    def test_needs_a_query(self):
        with self.assertRaises(ValueError):
            ComiPostprocessor(ratio=3).postprocess_nodes(nodes(2))


if __name__ == "__main__":
    unittest.main()
