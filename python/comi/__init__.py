"""comi — context compression by Marginal Information Gain, from Python.

A ctypes binding over libcomi.so (no third-party packages). The library is
loaded from $COMI_LIBRARY or from build/libcomi.so of the checkout this
package lives in.

    >>> import comi
    >>> short = comi.compress(long_text, "who founded the IB?", ratio=8)
    >>> res = comi.compress_ex(long_text, "who founded the IB?", target_tokens=200)
    >>> res.text, res.original_tokens, res.compressed_tokens, res.ratio, res.ms

Text mode keeps the words/phrases/sentences of the context that carry the
most Marginal Information Gain for the question and returns plain text; the
output is the same as `comi compress` prints for the same arguments.

Every call is thread-safe: each thread gets its own library context, and a
loaded Encoder is immutable and shared. Errors from the library raise
ComiError carrying the library's message.

The soft pipeline (the paper's system: encoder -> MIG merge -> decoder) is
comi.Model(path).answer(context, question).
"""

import ctypes
import os
import threading

from . import _lib
from ._lib import library_path
from .adapters import CompressedDocument, ComiCompressor

__all__ = [
    "ComiError",
    "NotSupportedError",
    "LimitError",
    "CompressResult",
    "Encoder",
    "Model",
    "AnswerResult",
    "compress",
    "compress_ex",
    "compress_documents",
    "compress_documents_ex",
    "version",
    "library_path",
    "set_limits",
    "get_limits",
    "ComiCompressor",
    "CompressedDocument",
]


class ComiError(Exception):
    """A failure reported by libcomi.

    Attributes: status (the comi_status code, int), status_name (e.g.
    "invalid argument") and message (the library's message naming the
    field/value at fault)."""

    def __init__(self, status, message):
        self.status = int(status)
        self.status_name = _lib.STATUS_NAMES.get(self.status, "unknown status")
        self.message = message
        super().__init__("%s: %s" % (self.status_name, message) if message else self.status_name)


class NotSupportedError(ComiError, NotImplementedError):
    """A feature this build of comi does not have (COMI_ERR_UNSUPPORTED)."""

    def __init__(self, message):
        super().__init__(4, message)  # COMI_ERR_UNSUPPORTED


class LimitError(ComiError):
    """A call that would go over a resource limit (COMI_ERR_LIMIT): see
    set_limits(). Raised before the large allocations."""

    def __init__(self, message):
        super().__init__(6, message)  # COMI_ERR_LIMIT


def _error(status, message):
    """The exception for a library status: NotSupportedError for
    COMI_ERR_UNSUPPORTED, LimitError for COMI_ERR_LIMIT, else ComiError."""
    if status == 4:
        return NotSupportedError(message)
    if status == 6:
        return LimitError(message)
    return ComiError(status, message)


def set_limits(max_context_tokens=None, max_memory=None):
    """Sets the resource limits of every later call, in every thread (the
    library's comi_ctx_params.max_context_tokens and max_bytes; the CLI's
    --max-context-tokens and --max-memory). max_context_tokens: the most
    tokens a context may have (text mode counts words); max_memory: the most
    bytes one call's working buffers may take. 0 means no token limit /
    physical memory (the defaults); None leaves a limit as it is. A call over
    a limit raises LimitError before allocating."""
    cur_tokens, cur_bytes = _lib.get_limits()
    new = []
    for name, value, cur in (("max_context_tokens", max_context_tokens, cur_tokens),
                             ("max_memory", max_memory, cur_bytes)):
        if value is None:
            new.append(cur)
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
        if value < 0 or value >= 1 << 63:
            raise ValueError("%s must be in [0, 2**63), got %d" % (name, value))
        new.append(value)
    _lib.set_limits(new[0], new[1])


def get_limits():
    """The current limits: {"max_context_tokens": int, "max_memory": int}
    (0: no limit / physical memory)."""
    tokens, nbytes = _lib.get_limits()
    return {"max_context_tokens": tokens, "max_memory": nbytes}


class CompressResult:
    """The outcome of compress_ex / compress_documents_ex.

    text: the compressed text; original_tokens / compressed_tokens: token
    counts (whitespace words for the lexical encoder); ratio:
    original_tokens / max(compressed_tokens, 1); ms: library wall time."""

    __slots__ = ("text", "original_tokens", "compressed_tokens", "ratio", "ms")

    def __init__(self, text, original_tokens, compressed_tokens, ratio, ms):
        self.text = text
        self.original_tokens = original_tokens
        self.compressed_tokens = compressed_tokens
        self.ratio = ratio
        self.ms = ms

    def __repr__(self):
        return ("CompressResult(original_tokens=%d, compressed_tokens=%d, ratio=%.3f, "
                "ms=%.3f, text=%r)" % (self.original_tokens, self.compressed_tokens, self.ratio,
                                       self.ms, self.text[:60] + ("..." if len(self.text) > 60
                                                                  else "")))

    def __str__(self):
        return self.text


def version():
    """The library version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib().comi_version().decode("ascii")


def _c_string(value, name):
    if not isinstance(value, str):
        raise TypeError("%s must be a str, got %s" % (name, type(value).__name__))
    if "\0" in value:
        raise ValueError("%s contains a NUL character" % name)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        raise ValueError("%s is not valid Unicode text: %s" % (name, e)) from e


class _OwnsHandle:
    """Base of the classes that own one C handle in self._handle and free it
    in close(): a `with` block and garbage collection call close()."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()


class Encoder(_OwnsHandle):
    """A loaded text encoder: "lexical" (built in, no model), "vectors:FILE"
    (GloVe text or word2vec binary word vectors), or a model path (.gguf file
    or Hugging Face directory). Immutable once loaded and safe to share
    across threads; pass it as `encoder=` to the compress functions. Free it
    with close() or a `with` block (or let it be collected)."""

    def __init__(self, spec):
        spec_b = _c_string(spec, "encoder spec")
        self.spec = spec
        self._handle = None
        self._lib = _lib.lib()
        c = _lib.ctx()
        out = ctypes.c_void_p()
        st = self._lib.comi_encoder_load(c.handle, spec_b, ctypes.byref(out))
        if st != _lib.COMI_OK:
            raise _error(st, c.errmsg())
        self._handle = out.value

    @property
    def handle(self):
        """The comi_encoder pointer (int); ValueError once closed."""
        if self._handle is None:
            raise ValueError("encoder %r is closed" % self.spec)
        return self._handle

    def close(self):
        """Frees the encoder (idempotent). Results already returned stay valid."""
        h, self._handle = self._handle, None
        if h:
            self._lib.comi_encoder_free(h)

    def __repr__(self):
        return "Encoder(%r%s)" % (self.spec, "" if self._handle else ", closed")


_encoder_cache = {}
_encoder_cache_lock = threading.Lock()


def _resolve_encoder(encoder):
    """None -> the built-in lexical encoder (NULL); a str -> an Encoder
    loaded once per spec and kept; an Encoder -> itself."""
    if encoder is None:
        return None
    if isinstance(encoder, Encoder):
        return encoder
    if isinstance(encoder, str):
        if encoder == "lexical":
            return None
        with _encoder_cache_lock:
            enc = _encoder_cache.get(encoder)
            if enc is None:
                enc = _encoder_cache[encoder] = Encoder(encoder)
            return enc
    raise TypeError("encoder must be None, a spec string or an Encoder, got %s"
                    % type(encoder).__name__)


def _params(ratio, target_tokens, encoder):
    if ratio is not None and target_tokens is not None:
        raise ValueError("give either ratio or target_tokens, not both")
    p = _lib.lib().comi_text_default_params()
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise TypeError("ratio must be a number, got %s" % type(ratio).__name__)
        p.ratio = float(ratio)
        p.target_tokens = 0
    if target_tokens is not None:
        if isinstance(target_tokens, bool) or not isinstance(target_tokens, int):
            raise TypeError("target_tokens must be an int, got %s" % type(target_tokens).__name__)
        if target_tokens <= 0:
            # 0 would mean "use the ratio" to the library; refuse it here
            raise ValueError("target_tokens must be > 0, got %d" % target_tokens)
        if target_tokens >= 2 ** 63:
            raise ValueError("target_tokens %d is too large" % target_tokens)
        p.target_tokens = target_tokens
    enc = _resolve_encoder(encoder)
    p.encoder = enc.handle if enc is not None else None
    return p, enc


def _finish(lib, c, st, res):
    try:
        if st != _lib.COMI_OK:
            raise _error(st, c.errmsg())
        raw = ctypes.string_at(res.text) if res.text else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ComiError(7, "the compressed text is not valid UTF-8: %s" % e) from e
        return CompressResult(text, res.original_tokens, res.compressed_tokens, res.ratio, res.ms)
    finally:
        lib.comi_text_result_free(ctypes.byref(res))


def compress_ex(context, question, ratio=None, target_tokens=None, encoder=None):
    """Compresses one context for a question; returns a CompressResult.

    context: the text (documents may be separated by blank lines);
    question: what the compressed text must still answer; ratio: keep at
    most original_tokens / ratio tokens (>= 1); target_tokens: keep at most
    this many (> 0; give one of ratio / target_tokens, or neither for the
    library's default ratio); encoder: None or "lexical" (built in), another
    spec string (loaded once and cached), or an Encoder.
    Raises ComiError (library failure), TypeError / ValueError (arguments)."""
    ctx_b = _c_string(context, "context")
    q_b = _c_string(question, "question")
    p, enc = _params(ratio, target_tokens, encoder)
    lib = _lib.lib()
    c = _lib.ctx()
    res = _lib.TextResult()
    st = lib.comi_compress_text(c.handle, ctx_b, q_b, ctypes.byref(p), ctypes.byref(res))
    del enc  # kept alive across the call
    return _finish(lib, c, st, res)


def compress(context, question, ratio=None, target_tokens=None, encoder=None):
    """Compresses one context for a question and returns the compressed text
    (a str, the same as `comi compress` prints). Arguments as compress_ex."""
    return compress_ex(context, question, ratio, target_tokens, encoder).text


def compress_documents_ex(documents, question, ratio=None, target_tokens=None, encoder=None):
    """Compresses a list of documents (str each) jointly for a question: the
    budget is shared, so documents with little Marginal Information Gain give
    up most of theirs. Returns a CompressResult; arguments as compress_ex."""
    if isinstance(documents, (str, bytes)):
        raise TypeError("documents must be a list of str, not a single %s"
                        % type(documents).__name__)
    docs_b = [_c_string(d, "documents[%d]" % i) for i, d in enumerate(documents)]
    q_b = _c_string(question, "question")
    p, enc = _params(ratio, target_tokens, encoder)
    lib = _lib.lib()
    c = _lib.ctx()
    arr = (ctypes.c_char_p * max(len(docs_b), 1))(*docs_b)
    res = _lib.TextResult()
    st = lib.comi_compress_documents(c.handle, arr, len(docs_b), q_b, ctypes.byref(p),
                                     ctypes.byref(res))
    del enc
    return _finish(lib, c, st, res)


def compress_documents(documents, question, ratio=None, target_tokens=None, encoder=None):
    """compress_documents_ex(...).text: the jointly compressed text."""
    return compress_documents_ex(documents, question, ratio, target_tokens, encoder).text


class AnswerResult:
    """The outcome of Model.answer_ex.

    text: the answer (special tokens stripped; bytes that do not form UTF-8
    are replaced by U+FFFD); ids: the generated token ids; context_tokens /
    question_tokens: tokens read; memory_vectors: merged memory vectors over
    all segments; segments; encoder_layers: the depth used; ms: total
    library time; ms_stages: dict of tokenize / encode / merge / fuse /
    prefill / generate milliseconds."""

    __slots__ = ("text", "ids", "context_tokens", "question_tokens", "memory_vectors",
                 "segments", "encoder_layers", "ms", "ms_stages")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw[k])

    def __repr__(self):
        return "AnswerResult(text=%r, ids=%r, context_tokens=%d, memory_vectors=%d, ms=%.1f)" % (
            self.text, self.ids, self.context_tokens, self.memory_vectors, self.ms)

    def __str__(self):
        return self.text


class Model(_OwnsHandle):
    """The soft COMI pipeline over a language model: the encoder (the first
    K layers) reads [context segment ; question], the MIG merge turns each
    segment into ~n/merge_size memory vectors, and the decoder answers
    greedily from [memory vectors ; question embeddings].

    path: the base model (.gguf file or Hugging Face directory), used
    training-free when `checkpoint` is None; checkpoint: a COMI checkpoint
    directory (or the prefix `comi convert` wrote) on top of it; tokenizer:
    another tokenizer (.gguf, HF directory, tokenizer.json); lora_alpha:
    decoder LoRA alpha when the checkpoint does not say.

    Loading happens here (weights are memory-mapped); a Model is immutable
    and may be shared by threads. Free it with close() or a `with` block.
    Raises ComiError naming the file at fault."""

    def __init__(self, path, checkpoint=None, tokenizer=None, lora_alpha=None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("path must be a str or os.PathLike, got %s" % type(path).__name__)
        self.path = os.fspath(path)
        self.checkpoint = os.fspath(checkpoint) if checkpoint is not None else None
        self._handle = None
        self._lib = _lib.lib()
        lp = self._lib.comi_pipeline_load_default_params()
        # keep the encoded strings alive for the call
        model_b = _c_string(self.path, "path")
        ckpt_b = _c_string(self.checkpoint, "checkpoint") if self.checkpoint else None
        tok_b = _c_string(os.fspath(tokenizer), "tokenizer") if tokenizer is not None else None
        lp.model, lp.checkpoint, lp.tokenizer = model_b, ckpt_b, tok_b
        if lora_alpha is not None:
            lp.lora_alpha = float(lora_alpha)
        c = _lib.ctx()
        out = ctypes.c_void_p()
        st = self._lib.comi_pipeline_load(c.handle, ctypes.byref(lp), ctypes.byref(out))
        if st != _lib.COMI_OK:
            raise _error(st, c.errmsg())
        self._handle = out.value
        info = _lib.PipelineInfo()
        self._lib.comi_pipeline_get_info(self._handle, ctypes.byref(info))
        self.info = {
            "description": (info.description or b"").decode("utf-8", "replace"),
            "encoder_layers": info.encoder_layers,
            "encoder_n_layer": info.encoder_n_layer,
            "d_encoder": info.d_encoder,
            "d_decoder": info.d_decoder,
            "fusion_layers": info.fusion_layers,
            "alignment": bool(info.alignment),
            "decoder_lora": bool(info.decoder_lora),
            "shared_model": bool(info.shared_model),
        }

    @property
    def handle(self):
        """The comi_pipeline pointer (int); ValueError once closed."""
        if self._handle is None:
            raise ValueError("model %r is closed" % self.path)
        return self._handle

    def answer_ex(self, context, question, merge_size=None, max_new_tokens=None,
                  encoder_layers=None, segment_size=None, repetition_penalty=None):
        """Answers `question` from `context` (a str, or a list of str
        passages joined with newlines). Knobs left None keep the pipeline's
        defaults (merge_size 16, max_new_tokens 20, a checkpoint's trained
        encoder depth and alpha/beta). Returns an AnswerResult."""
        q_b = _c_string(question, "question")
        p = self._lib.comi_pipeline_answer_params(self.handle)
        p.keep_logits = False
        for name, value, lo in (("merge_size", merge_size, 1),
                                ("max_new_tokens", max_new_tokens, 1),
                                ("encoder_layers", encoder_layers, 1),
                                ("segment_size", segment_size, 1)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
            if value < lo or value >= 2 ** 31:
                raise ValueError("%s must be in [%d, 2**31), got %d" % (name, lo, value))
            if name == "merge_size":
                p.merge.merge_size = value
            else:
                setattr(p, name, value)
        if repetition_penalty is not None:
            p.repetition_penalty = float(repetition_penalty)
        c = _lib.ctx()
        res = _lib.AnswerResult()
        if isinstance(context, str):
            st = self._lib.comi_pipeline_answer(c.handle, self.handle,
                                                _c_string(context, "context"), q_b,
                                                ctypes.byref(p), ctypes.byref(res))
        else:
            if isinstance(context, bytes):
                raise TypeError("context must be a str or a list of str, not bytes")
            docs_b = [_c_string(d, "context[%d]" % i) for i, d in enumerate(context)]
            arr = (ctypes.c_char_p * max(len(docs_b), 1))(*docs_b)
            st = self._lib.comi_pipeline_answer_documents(c.handle, self.handle, arr,
                                                          len(docs_b), q_b, ctypes.byref(p),
                                                          ctypes.byref(res))
        try:
            if st != _lib.COMI_OK:
                raise _error(st, c.errmsg())
            raw = ctypes.string_at(res.text) if res.text else b""
            return AnswerResult(
                text=raw.decode("utf-8", "replace"),
                ids=[res.ids[i] for i in range(res.n_ids)],
                context_tokens=res.n_context_tokens,
                question_tokens=res.n_question_tokens,
                memory_vectors=res.n_memory,
                segments=res.n_segments,
                encoder_layers=res.encoder_layers,
                ms=res.ms_total,
                ms_stages={"tokenize": res.ms_tokenize, "encode": res.ms_encode,
                           "merge": res.ms_merge, "fuse": res.ms_fuse,
                           "prefill": res.ms_prefill, "generate": res.ms_generate})
        finally:
            self._lib.comi_answer_result_free(ctypes.byref(res))

    def answer(self, context, question, **options):
        """answer_ex(...).text: the answer as a str."""
        return self.answer_ex(context, question, **options).text

    def close(self):
        """Frees the weights (idempotent)."""
        h, self._handle = self._handle, None
        if h:
            self._lib.comi_pipeline_free(h)

    def __repr__(self):
        return "Model(%r%s%s)" % (self.path, ", checkpoint=%r" % self.checkpoint
                                  if self.checkpoint else "", "" if self._handle else ", closed")
