"""A document compressor shaped like LangChain's BaseDocumentCompressor and
LlamaIndex's node postprocessors, written without importing either.

    from comi import ComiCompressor
    compressor = ComiCompressor(ratio=8)
    docs = compressor.compress_documents(retrieved_docs, "who wrote Hamlet?")

Documents may be str, or objects with a `page_content` (LangChain Document)
or `text` (LlamaIndex Node/TextNode) string attribute; nodes wrapped with a
score (LlamaIndex NodeWithScore: `.node.text`) work too.
"""

import copy

__all__ = ["ComiCompressor", "CompressedDocument"]


class CompressedDocument:
    """The jointly compressed text of several documents. Has both
    `page_content` (LangChain) and `text` (LlamaIndex) plus `metadata`
    (original_tokens, compressed_tokens, ratio, ms, n_documents)."""

    def __init__(self, page_content, metadata=None):
        self.page_content = page_content
        self.metadata = dict(metadata or {})

    @property
    def text(self):
        return self.page_content

    def __repr__(self):
        return "CompressedDocument(page_content=%r, metadata=%r)" % (
            self.page_content[:60], self.metadata)


def _content_of(doc, i):
    """(text, attribute path) of one document; TypeError when none fits."""
    if isinstance(doc, str):
        return doc, None
    for path in (("page_content",), ("text",), ("node", "text")):
        obj = doc
        try:
            for attr in path:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        if isinstance(obj, str):
            return obj, path
    raise TypeError("documents[%d] (%s) is not a str and has no str page_content, text or "
                    "node.text" % (i, type(doc).__name__))


def _with_content(doc, path, text):
    """A shallow copy of doc whose content attribute is text (str -> str)."""
    if path is None:
        return text
    out = copy.copy(doc)
    if len(path) == 2:  # NodeWithScore: copy the inner node too
        inner = copy.copy(getattr(out, path[0]))
        setattr(inner, path[1], text)
        setattr(out, path[0], inner)
    else:
        setattr(out, path[0], text)
    return out


class ComiCompressor:
    """Compresses retrieved documents for a query with COMI text mode.

    joint=True (default): all documents are compressed together (the budget
    flows to the documents with the most Marginal Information Gain) and the
    result is a one-element list holding a CompressedDocument.
    joint=False: each document is compressed on its own with the same
    ratio/target, and the result keeps the input types and their other
    attributes (metadata, ids); documents that compress to nothing are
    dropped.

    ratio / target_tokens / encoder and any other option (unit="sentence"
    or readable=True for whole sentences, tokenizer=, knobs): as
    comi.compress_ex()."""

    def __init__(self, ratio=None, target_tokens=None, encoder=None, joint=True, **options):
        self.ratio = ratio
        self.target_tokens = target_tokens
        self.encoder = encoder
        self.joint = joint
        self.options = options

    def compress_documents(self, documents, query, callbacks=None):
        """LangChain's signature: (documents, query[, callbacks]) -> list."""
        from . import compress_documents_ex, compress_ex
        if isinstance(documents, (str, bytes)):
            raise TypeError("documents must be a list, not a single %s" % type(documents).__name__)
        docs = list(documents)
        if not docs:
            return []
        contents = [_content_of(d, i) for i, d in enumerate(docs)]
        if self.joint:
            res = compress_documents_ex([c for c, _ in contents], query, self.ratio,
                                        self.target_tokens, self.encoder, **self.options)
            return [CompressedDocument(res.text, {
                "original_tokens": res.original_tokens,
                "compressed_tokens": res.compressed_tokens,
                "ratio": res.ratio,
                "ms": res.ms,
                "n_documents": len(docs),
            })]
        out = []
        for d, (text, path) in zip(docs, contents):
            if not text.strip():
                continue
            res = compress_ex(text, query, self.ratio, self.target_tokens, self.encoder,
                              **self.options)
            if res.text.strip():
                out.append(_with_content(d, path, res.text))
        return out

    async def acompress_documents(self, documents, query, callbacks=None):
        """The async form LangChain also calls (runs synchronously)."""
        return self.compress_documents(documents, query, callbacks)

    def postprocess_nodes(self, nodes, query_bundle=None, query_str=None):
        """LlamaIndex's postprocessor signature; query_bundle.query_str or
        query_str is the query."""
        q = query_str if query_str is not None else getattr(query_bundle, "query_str", None)
        if not isinstance(q, str):
            raise TypeError("postprocess_nodes needs query_str or a query_bundle with query_str")
        return self.compress_documents(nodes, q)
