"""comi for LlamaIndex: ComiPostprocessor, a llama-index-core node
postprocessor.

    pip install 'comi[llama-index]'

    from comi.llama_index import ComiPostprocessor

    query_engine = index.as_query_engine(
        node_postprocessors=[ComiPostprocessor(ratio=4)])

Each retrieved node's text is compressed on its own for the query (all of
them in one call into the library); the result holds copies of the nodes
with the compressed text and the same metadata, id and score. Nodes that
compress to nothing are dropped. The options are comi.Compressor's (ratio,
target_tokens, encoder and the text-mode knobs).
"""

from typing import Any, Dict, List, Optional

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore, QueryBundle
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("comi.llama_index needs llama-index-core: "
                      "pip install 'comi[llama-index]'") from e

from . import Compressor

__all__ = ["ComiPostprocessor"]


class ComiPostprocessor(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor running COMI text-mode compression.

    ComiPostprocessor(ratio=4) or any comi.Compressor option. Needs a query
    (postprocess_nodes(nodes, query_str=...) or a query bundle); every
    returned node is a copy of its input with the compressed text and the
    same metadata, id and score."""

    options: Dict[str, Any] = Field(default_factory=dict,
                                    description="comi.Compressor options")
    _compressor: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        options = dict(kwargs.pop("options", None) or {})
        callback_manager = kwargs.pop("callback_manager", None)
        options.update(kwargs)
        extra = {"callback_manager": callback_manager} if callback_manager is not None else {}
        super().__init__(options=options, **extra)
        self._compressor = Compressor(**options)

    @classmethod
    def class_name(cls) -> str:
        return "ComiPostprocessor"

    @property
    def compressor(self) -> Compressor:
        """The comi.Compressor doing the work."""
        return self._compressor

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("ComiPostprocessor needs the query: pass query_str or query_bundle")
        if not nodes:
            return []
        texts = [n.node.get_content() for n in nodes]
        results = self._compressor.compress_batch(texts, query_bundle.query_str)
        out = []
        for n, r in zip(nodes, results):
            if not r.text.strip():
                continue
            node = n.node.model_copy(deep=True)
            node.set_content(r.text)
            out.append(NodeWithScore(node=node, score=n.score))
        return out
