"""comi for LangChain: ComiCompressor, a langchain-core BaseDocumentCompressor.

    pip install 'comi[langchain]'

    from langchain.retrievers import ContextualCompressionRetriever
    from comi.langchain import ComiCompressor

    retriever = ContextualCompressionRetriever(
        base_compressor=ComiCompressor(ratio=4), base_retriever=my_retriever)
    docs = retriever.invoke("who wrote Hamlet?")

Each document is compressed on its own for the query (all of them in one
call into the library) and comes back as a copy with its page_content
compressed and its metadata and id unchanged; documents that compress to
nothing are dropped. The options are comi.Compressor's (ratio,
target_tokens, encoder and the text-mode knobs).
"""

from typing import Any, Dict, Optional, Sequence

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("comi.langchain needs langchain-core: pip install 'comi[langchain]'") from e

from pydantic import ConfigDict, Field, PrivateAttr

from . import Compressor

__all__ = ["ComiCompressor"]


class ComiCompressor(BaseDocumentCompressor):
    """A LangChain document compressor running COMI text-mode compression.

    ComiCompressor(ratio=4), ComiCompressor(target_tokens=200,
    encoder="vectors:glove.txt", keep_titles=True): any comi.Compressor
    option. Usable as ContextualCompressionRetriever(base_compressor=...).
    Every returned Document keeps the metadata (and id) of the one it came
    from; only page_content changes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    options: Dict[str, Any] = Field(default_factory=dict)
    """The comi.Compressor options (ratio, target_tokens, encoder, knobs)."""

    _compressor: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        options = dict(kwargs.pop("options", None) or {})
        options.update(kwargs)
        super().__init__(options=options)
        self._compressor = Compressor(**options)

    @property
    def compressor(self) -> Compressor:
        """The comi.Compressor doing the work."""
        return self._compressor

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Optional[Callbacks] = None) -> Sequence[Document]:
        """Compresses each document for query; returns the non-empty ones,
        in order, as copies with compressed page_content (metadata kept).
        Raises comi.Error (e.g. comi.InputError) when the library refuses a
        document."""
        docs = list(documents)
        if not docs:
            return []
        results = self._compressor.compress_batch([d.page_content for d in docs], query)
        out = []
        for d, r in zip(docs, results):
            if not r.text.strip():
                continue
            out.append(d.model_copy(update={"page_content": r.text,
                                            "metadata": dict(d.metadata)}))
        return out
