"""comi for Ray Data: CompressBatch, a callable class for map_batches.

    pip install 'comi[ray]'

    import ray
    from comi.ray import CompressBatch

    ds = ray.data.read_parquet("corpus/")            # columns "text", "question"
    out = ds.map_batches(CompressBatch,
                         fn_constructor_kwargs={"ratio": 4},
                         concurrency=8, batch_size=256)
    out.write_parquet("compressed/")

Each worker builds one CompressBatch (one comi.Compressor: options checked
and encoder loaded once) and calls it on batches; a batch crosses into the
library once, with the GIL released. The batch comes back with three more
columns: "compressed" (the text, or None), "compressed_tokens" (an int, or
None) and "error" (None, or "ExceptionType: message" for a row that could
not be compressed: a missing or non-text context or question, a context the
library refuses). A bad row never stops the job. See README "Python" for a
whole job and for running it on a multi-node cluster
(scripts/ray_compress.py).
"""

from typing import Any, Dict, List, Optional

from . import Compressor

__all__ = ["CompressBatch"]


def _column(batch: Any, name: str) -> List[Any]:
    col = batch[name]
    return col.tolist() if hasattr(col, "tolist") else list(col)


class CompressBatch:
    """CompressBatch(context_column="text", question_column="question",
    question=None, **options): options are comi.Compressor's (ratio,
    target_tokens, encoder, knobs). question= gives one question for every
    row instead of a column. Accepts the batch formats Ray Data hands over
    ("numpy": a dict of arrays, "pandas": a DataFrame) and returns the same
    kind with the new columns. Pickles by its options."""

    def __init__(self, context_column: str = "text", question_column: str = "question",
                 question: Optional[str] = None, **options: Any) -> None:
        self.context_column = context_column
        self.question_column = question_column
        self.question = question
        self.options = dict(options)
        self.compressor = Compressor(**options)

    def __call__(self, batch: Any) -> Any:
        contexts = _column(batch, self.context_column)
        if self.question is not None:
            questions: Any = self.question
        else:
            questions = _column(batch, self.question_column)
        results = self.compressor.compress_batch(contexts, questions, return_exceptions=True)
        compressed: List[Optional[str]] = []
        tokens: List[Optional[int]] = []
        errors: List[Optional[str]] = []
        for r in results:
            if isinstance(r, BaseException):
                compressed.append(None)
                tokens.append(None)
                errors.append("%s: %s" % (type(r).__name__, r))
            else:
                compressed.append(r.text)
                tokens.append(int(r.compressed_tokens))
                errors.append(None)
        if isinstance(batch, dict):
            import numpy as np

            out: Dict[str, Any] = dict(batch)
            for name, values in (("compressed", compressed), ("compressed_tokens", tokens),
                                 ("error", errors)):
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
                out[name] = arr
            return out
        import pandas as pd  # a DataFrame batch; object columns keep None as None

        out = batch.copy()
        out["compressed"] = pd.Series(compressed, index=out.index, dtype=object)
        out["compressed_tokens"] = pd.Series(tokens, index=out.index, dtype=object)
        out["error"] = pd.Series(errors, index=out.index, dtype=object)
        return out

    def __reduce__(self):
        kwargs = dict(self.options, context_column=self.context_column,
                      question_column=self.question_column, question=self.question)
        return (_rebuild, (kwargs,))


def _rebuild(kwargs: Dict[str, Any]) -> CompressBatch:
    return CompressBatch(**kwargs)
