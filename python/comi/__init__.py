"""comi — context compression by Marginal Information Gain, from Python.

A ctypes binding over libcomi (no third-party packages). `pip install .`
from a checkout builds the C library and ships it inside the package; in a
checkout without installing, build/libcomi.so is used (or $COMI_LIBRARY).

    >>> import comi
    >>> short = comi.compress(long_text, "who founded the IB?", ratio=8)
    >>> c = comi.Compressor(ratio=8)                  # options (and encoder) held once
    >>> res = c.compress(long_text, "who founded the IB?")
    >>> res.text, res.original_tokens, res.compressed_tokens, res.ratio, res.ms
    >>> results = c.compress_batch(texts, questions)  # one call into C, GIL released

Text mode keeps the words/phrases/sentences of the context that carry the
most Marginal Information Gain for the question and returns plain text; the
output is the same as `comi compress` prints for the same arguments.

Every call is thread-safe: each thread gets its own library context, and a
loaded Encoder or Model is immutable and shared. Failures raise comi.Error
or one of its subclasses (see comi.errors): InputError (a ValueError),
LimitError (a MemoryError), FileError / MissingFileError (OSError /
FileNotFoundError), NotSupportedError (NotImplementedError).

Integrations (optional extras): comi.langchain.ComiCompressor,
comi.llama_index.ComiPostprocessor, comi.ray.CompressBatch.

The soft pipeline (the paper's system: encoder -> MIG merge -> decoder) is
comi.Model(path).answer(context, question).
"""

import ctypes
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _lib
from ._lib import library_path
from ._version import __version__
from .adapters import CompressedDocument, ComiCompressor
from .errors import (ComiError, Error, FileError, InputError, LimitError, MissingFileError,
                     NotSupportedError, error_for_status)

__all__ = [
    "__version__",
    "Error",
    "ComiError",
    "InputError",
    "LimitError",
    "FileError",
    "MissingFileError",
    "NotSupportedError",
    "CompressResult",
    "Compressor",
    "Encoder",
    "Tokenizer",
    "Model",
    "AnswerResult",
    "compress",
    "compress_ex",
    "compress_documents",
    "compress_documents_ex",
    "compress_prompt",
    "version",
    "library_path",
    "set_limits",
    "get_limits",
    "ComiCompressor",
    "CompressedDocument",
]


def _error(status: int, message: str, path: Optional[str] = None) -> Error:
    """The exception for a library status (see comi.errors)."""
    return error_for_status(status, message, path)


def set_limits(max_context_tokens: Optional[int] = None, max_memory: Optional[int] = None) -> None:
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
            raise InputError("%s must be in [0, 2**63), got %d" % (name, value))
        new.append(value)
    _lib.set_limits(new[0], new[1])


def get_limits() -> Dict[str, int]:
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

    text: str
    original_tokens: int
    compressed_tokens: int
    ratio: float
    ms: float

    def __init__(self, text: str, original_tokens: int, compressed_tokens: int, ratio: float,
                 ms: float) -> None:
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


def version() -> str:
    """The library version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib().comi_version().decode("ascii")


def _c_string(value, name):
    if not isinstance(value, str):
        raise TypeError("%s must be a str, got %s" % (name, type(value).__name__))
    if "\0" in value:
        raise InputError("%s contains a NUL character" % name)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        raise InputError("%s is not valid Unicode text: %s" % (name, e)) from e


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

    def __init__(self, spec: str) -> None:
        spec_b = _c_string(spec, "encoder spec")
        self.spec = spec
        self._handle = None
        self._lib = _lib.lib()
        c = _lib.ctx()
        out = ctypes.c_void_p()
        st = self._lib.comi_encoder_load(c.handle, spec_b, ctypes.byref(out))
        if st != _lib.COMI_OK:
            path = spec[len("vectors:"):] if spec.startswith("vectors:") else spec
            raise _error(st, c.errmsg(), path)
        self._handle = out.value

    @property
    def handle(self):
        """The comi_encoder pointer (int); ValueError once closed."""
        if self._handle is None:
            raise InputError("encoder %r is closed" % self.spec)
        return self._handle

    def close(self):
        """Frees the encoder (idempotent). Results already returned stay valid."""
        h, self._handle = self._handle, None
        if h:
            self._lib.comi_encoder_free(h)

    def __repr__(self):
        return "Encoder(%r%s)" % (self.spec, "" if self._handle else ", closed")


class Tokenizer(_OwnsHandle):
    """A loaded model tokenizer (.gguf file or Hugging Face directory) for
    budgets counted in that model's tokens: pass it (or its path) as
    `tokenizer=` to the compress functions and Compressor. Immutable once
    loaded and safe to share across threads; free it with close() or a
    `with` block (or let it be collected)."""

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("tokenizer must be a path, got %s" % type(path).__name__)
        self.path = os.fspath(path)
        self._handle = None
        self._lib = _lib.lib()
        c = _lib.ctx()
        out = ctypes.c_void_p()
        st = self._lib.comi_tokenizer_load(c.handle, _c_string(self.path, "tokenizer"),
                                           ctypes.byref(out))
        if st != _lib.COMI_OK:
            raise _error(st, c.errmsg(), self.path)
        self._handle = out.value

    @property
    def handle(self):
        """The comi_tokenizer pointer (int); ValueError once closed."""
        if self._handle is None:
            raise InputError("tokenizer %r is closed" % self.path)
        return self._handle

    def close(self):
        """Frees the tokenizer (idempotent)."""
        h, self._handle = self._handle, None
        if h:
            self._lib.comi_tokenizer_free(h)

    def __repr__(self):
        return "Tokenizer(%r%s)" % (self.path, "" if self._handle else ", closed")


_tokenizer_cache = {}


def _resolve_tokenizer(tokenizer):
    """None -> budgets in words; a path -> a Tokenizer loaded once per path
    and kept; a Tokenizer -> itself."""
    if tokenizer is None or isinstance(tokenizer, Tokenizer):
        return tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        key = os.fspath(tokenizer)
        with _encoder_cache_lock:
            tok = _tokenizer_cache.get(key)
            if tok is None:
                tok = _tokenizer_cache[key] = Tokenizer(key)
            return tok
    raise TypeError("tokenizer must be None, a path or a Tokenizer, got %s"
                    % type(tokenizer).__name__)


# The output units (comi_text_unit) by name; "readable" is "sentence".
UNITS = ("word", "clause", "sentence")


def _set_unit(p, unit, readable):
    """unit: None or "word" | "clause" | "sentence" | "readable";
    readable: None or a bool (True: unit sentence)."""
    if unit is not None:
        if not isinstance(unit, str):
            raise TypeError("unit must be a str (%s), got %s" % (", ".join(UNITS),
                                                                  type(unit).__name__))
        c = _lib.ctx()
        st = _lib.lib().comi_text_set_unit(c.handle, ctypes.byref(p), _c_string(unit, "unit"))
        if st != _lib.COMI_OK:
            raise _error(st, c.errmsg())
    if readable is not None:
        if not isinstance(readable, bool):
            raise TypeError("readable must be a bool, got %s" % type(readable).__name__)
        if readable:
            if unit is not None and p.unit != 2:
                raise InputError("readable=True means unit 'sentence', but unit is %r" % unit)
            p.unit = 2


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


def _kv_type(value):
    """kv_type "f32" (None: the default) or "f16" -> the library's
    comi_ctx_params.kv_type (COMI_KV_F32 / COMI_KV_F16)."""
    if value is None:
        return _lib.KV_F32
    if not isinstance(value, str):
        raise TypeError("kv_type must be a str ('f32' or 'f16'), got %s" % type(value).__name__)
    kv = _lib.KV_TYPES.get(value.lower())
    if kv is None:
        raise InputError("kv_type must be 'f32' or 'f16', got %r" % value)
    return kv


def _is_model_encoder(enc):
    return enc is not None and not enc.spec.startswith("vectors:")


def _params(ratio, target_tokens, encoder, knobs=None):
    """The comi_text_params of the options, the loaded objects (encoder,
    tokenizer) they point to, which the caller keeps alive while they are
    used, and the KV cache type of the model encoder's context (_lib.KV_*).
    knobs may hold unit, readable, tokenizer and kv_type besides the knobs."""
    if ratio is not None and target_tokens is not None:
        raise InputError("give either ratio or target_tokens, not both")
    knobs = dict(knobs or {})
    unit = knobs.pop("unit", None)
    readable = knobs.pop("readable", None)
    tokenizer = knobs.pop("tokenizer", None)
    kv = _kv_type(knobs.pop("kv_type", None))
    p = _lib.lib().comi_text_default_params()
    _set_unit(p, unit, readable)
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
            raise InputError("target_tokens must be > 0, got %d" % target_tokens)
        if target_tokens >= 2 ** 63:
            raise InputError("target_tokens %d is too large" % target_tokens)
        p.target_tokens = target_tokens
    for name, value in (knobs or {}).items():
        kind = _KNOBS.get(name)
        if kind is None:
            raise TypeError("unknown option %r (known: ratio, target_tokens, encoder, unit, "
                            "readable, tokenizer, kv_type, %s)"
                            % (name, ", ".join(sorted(_KNOBS))))
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError("%s must be a bool, got %s" % (name, type(value).__name__))
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
            if not -2 ** 31 <= value < 2 ** 31:
                raise InputError("%s %d is out of range" % (name, value))
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("%s must be a number, got %s" % (name, type(value).__name__))
            value = float(value)
        setattr(p, name, value)
    enc = _resolve_encoder(encoder)
    if kv != _lib.KV_F32 and not _is_model_encoder(enc):
        raise InputError("kv_type 'f16' needs a model encoder (encoder=MODEL path): the lexical "
                         "and vectors encoders keep no KV cache")
    p.encoder = enc.handle if enc is not None else None
    tok = _resolve_tokenizer(tokenizer)
    p.tokenizer = tok.handle if tok is not None else None
    return p, (enc, tok), kv


# The text-mode knobs of comi_text_params a Compressor accepts besides
# ratio / target_tokens / encoder, with their Python types.
_KNOBS = {
    name: (bool if ctype is ctypes.c_bool else int if ctype is ctypes.c_int32 else float)
    for name, ctype in _lib.TextParams._fields_
    if name not in ("ratio", "target_tokens", "encoder", "tokenizer", "unit", "_reserved")
}


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


EncoderLike = Union[None, str, "Encoder"]


def compress_ex(context: str, question: str, ratio: Optional[float] = None,
                target_tokens: Optional[int] = None,
                encoder: EncoderLike = None, **knobs: Any) -> CompressResult:
    """Compresses one context for a question; returns a CompressResult.

    context: the text (documents may be separated by blank lines);
    question: what the compressed text must still answer; ratio: keep at
    most original_tokens / ratio tokens (>= 1); target_tokens: keep at most
    this many (> 0; give one of ratio / target_tokens, or neither for the
    library's default ratio); encoder: None or "lexical" (built in), another
    spec string (loaded once and cached), or an Encoder; knobs: any
    comi_text_params knob by its name, the names `comi compress --set`, `comi
    eval --set` and the HTTP body take (alpha, beta, temperature,
    context_weight, min_unit_words, min_group_words, window_words,
    bridge_weight, lead_weight, centrality_weight, summary -1/0/1, keep_titles,
    coarse, redundancy, answer_first), and:
    unit: "word" (default: clauses, cut to their best words under a tight
    budget), "clause" (whole clauses) or "sentence" (whole sentences only,
    each exactly as in the input; a budget shorter than every sentence
    raises InputError); readable=True is unit="sentence";
    tokenizer: a model path (.gguf or HF directory; loaded once and cached)
    or a Tokenizer: ratio / target_tokens and the result's token counts are
    then that model's tokens instead of words;
    kv_type: "f32" (default) or "f16", the KV cache of a model encoder
    (comi_ctx_params.kv_type, the CLI's --kv-type): halves the memory of the
    encoder's sessions; only with encoder=MODEL.
    Raises comi.Error subclasses (InputError for bad values) and TypeError."""
    ctx_b = _c_string(context, "context")
    q_b = _c_string(question, "question")
    p, enc, kv = _params(ratio, target_tokens, encoder, knobs)
    lib = _lib.lib()
    c = _lib.ctx(kv)
    res = _lib.TextResult()
    st = lib.comi_compress_text(c.handle, ctx_b, q_b, ctypes.byref(p), ctypes.byref(res))
    del enc  # kept alive across the call
    return _finish(lib, c, st, res)


def compress(context: str, question: str, ratio: Optional[float] = None,
             target_tokens: Optional[int] = None, encoder: EncoderLike = None,
             **knobs: Any) -> str:
    """Compresses one context for a question and returns the compressed text
    (a str, the same as `comi compress` prints). Arguments as compress_ex."""
    return compress_ex(context, question, ratio, target_tokens, encoder, **knobs).text


def compress_documents_ex(documents: Sequence[str], question: str, ratio: Optional[float] = None,
                          target_tokens: Optional[int] = None,
                          encoder: EncoderLike = None, **knobs: Any) -> CompressResult:
    """Compresses a list of documents (str each) jointly for a question: the
    budget is shared, so documents with little Marginal Information Gain give
    up most of theirs. Returns a CompressResult; arguments as compress_ex."""
    if isinstance(documents, (str, bytes)):
        raise TypeError("documents must be a list of str, not a single %s"
                        % type(documents).__name__)
    docs_b = [_c_string(d, "documents[%d]" % i) for i, d in enumerate(documents)]
    q_b = _c_string(question, "question")
    p, enc, kv = _params(ratio, target_tokens, encoder, knobs)
    lib = _lib.lib()
    c = _lib.ctx(kv)
    arr = (ctypes.c_char_p * max(len(docs_b), 1))(*docs_b)
    res = _lib.TextResult()
    st = lib.comi_compress_documents(c.handle, arr, len(docs_b), q_b, ctypes.byref(p),
                                     ctypes.byref(res))
    del enc
    return _finish(lib, c, st, res)


def compress_documents(documents: Sequence[str], question: str, ratio: Optional[float] = None,
                       target_tokens: Optional[int] = None, encoder: EncoderLike = None,
                       **knobs: Any) -> str:
    """compress_documents_ex(...).text: the jointly compressed text."""
    return compress_documents_ex(documents, question, ratio, target_tokens, encoder,
                                 **knobs).text


def compress_prompt(context: Union[str, Sequence[str]], instruction: str = "",
                    question: str = "", rate: float = 0.5, target_token: int = -1,
                    encoder: EncoderLike = None, **knobs: Any) -> dict:
    """LLMLingua's PromptCompressor.compress_prompt call, so a LLMLingua user
    switches with one line.

    context: a str, or a list of str (documents, compressed jointly);
    instruction, question: kept whole around the compressed context (the
    question, else the instruction, drives the selection; with neither, the
    context is summarised: summary mode); rate: the fraction of the
    context's tokens to keep, in (0, 1]; target_token: keep at most this many
    tokens instead (when > 0). Tokens are text mode's (words; CJK letters).
    Returns a dict with LLMLingua's keys: compressed_prompt (instruction,
    compressed context and question joined by blank lines), origin_tokens and
    compressed_tokens (of the context), ratio ("4.0x") and rate ("25.0%")."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise InputError("rate must be a number in (0, 1], got %r" % (rate,))
    if isinstance(target_token, bool) or not isinstance(target_token, int):
        raise TypeError("target_token must be an int, got %s" % type(target_token).__name__)
    q = question or instruction
    if not (q and q.strip()):
        q = "summary"
        knobs.setdefault("summary", 1)
    if target_token > 0:
        budget = dict(target_tokens=target_token)
    else:
        budget = dict(ratio=1.0 / rate)
    if isinstance(context, (list, tuple)):
        res = compress_documents_ex(list(context), q, encoder=encoder, **budget, **knobs)
    else:
        res = compress_ex(context, q, encoder=encoder, **budget, **knobs)
    prompt = "\n\n".join(s for s in (instruction, res.text, question) if s)
    kept = res.compressed_tokens / res.original_tokens if res.original_tokens else 1.0
    return {
        "compressed_prompt": prompt,
        "origin_tokens": res.original_tokens,
        "compressed_tokens": res.compressed_tokens,
        "ratio": "%.1fx" % (res.original_tokens / max(res.compressed_tokens, 1)),
        "rate": "%.1f%%" % (100.0 * kept),
    }


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
    decoder LoRA alpha when the checkpoint does not say; kv_type: "f32"
    (default) or "f16", the element type of the encoder's and decoder's KV
    caches while answering (comi_ctx_params.kv_type, the CLI's --kv-type:
    half the cache memory, keys and values rounded to half precision).

    Loading happens here (weights are memory-mapped); a Model is immutable
    and may be shared by threads. Free it with close() or a `with` block.
    Raises ComiError naming the file at fault."""

    def __init__(self, path: Union[str, "os.PathLike[str]"],
                 checkpoint: Union[None, str, "os.PathLike[str]"] = None,
                 tokenizer: Union[None, str, "os.PathLike[str]"] = None,
                 lora_alpha: Optional[float] = None, kv_type: Optional[str] = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("path must be a str or os.PathLike, got %s" % type(path).__name__)
        self._kv = _kv_type(kv_type)
        self.kv_type = "f16" if self._kv == _lib.KV_F16 else "f32"
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
            missing = [p for p in (self.path, self.checkpoint) if p and not os.path.exists(p)]
            raise _error(st, c.errmsg(), missing[0] if missing else self.path)
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
            raise InputError("model %r is closed" % self.path)
        return self._handle

    def answer_ex(self, context: Union[str, Sequence[str]], question: str,
                  merge_size: Optional[int] = None, max_new_tokens: Optional[int] = None,
                  encoder_layers: Optional[int] = None, segment_size: Optional[int] = None,
                  repetition_penalty: Optional[float] = None) -> "AnswerResult":
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
                raise InputError("%s must be in [%d, 2**31), got %d" % (name, lo, value))
            if name == "merge_size":
                p.merge.merge_size = value
            else:
                setattr(p, name, value)
        if repetition_penalty is not None:
            p.repetition_penalty = float(repetition_penalty)
        c = _lib.ctx(self._kv)
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

    def answer(self, context: Union[str, Sequence[str]], question: str, **options: Any) -> str:
        """answer_ex(...).text: the answer as a str."""
        return self.answer_ex(context, question, **options).text

    def close(self):
        """Frees the weights (idempotent)."""
        h, self._handle = self._handle, None
        if h:
            self._lib.comi_pipeline_free(h)

    def __repr__(self):
        return "Model(%r%s%s%s)" % (self.path, ", checkpoint=%r" % self.checkpoint
                                    if self.checkpoint else "",
                                    ", kv_type='f16'" if self._kv == _lib.KV_F16 else "",
                                    "" if self._handle else ", closed")


class Compressor:
    """Text-mode compression with options fixed once: comi.compress's
    ratio / target_tokens / encoder plus any comi_text_params knob
    (keep_titles, coarse, redundancy, alpha, beta, temperature,
    context_weight, min_unit_words, min_group_words, window_words,
    bridge_weight, centrality_weight, lead_weight), unit ("word" |
    "clause" | "sentence"; readable=True for "sentence"), tokenizer
    (budgets in a model's tokens) and kv_type ("f32" or "f16": the KV cache
    of a model encoder), as compress_ex; options left out keep the
    library's defaults.

    The options are checked and the encoder loaded (once per process for a
    spec string) when the Compressor is made, not per call. A Compressor is
    immutable and safe to share between threads (each thread runs on its own
    library context). It pickles by its options, so engines (Ray,
    multiprocessing) can ship it to workers, which load the encoder again.

        >>> c = comi.Compressor(ratio=8)
        >>> c.compress(context, question).text
        >>> [r.compressed_tokens for r in c.compress_batch(contexts, question)]
    """

    def __init__(self, ratio: Optional[float] = None, target_tokens: Optional[int] = None,
                 encoder: EncoderLike = None, **knobs: Any) -> None:
        self._params, self._encoder, self._kv = _params(ratio, target_tokens, encoder, knobs)
        spec = encoder.spec if isinstance(encoder, Encoder) else encoder
        if isinstance(knobs.get("tokenizer"), Tokenizer):  # pickles by its path
            knobs = dict(knobs, tokenizer=knobs["tokenizer"].path)
        self._options = dict(ratio=ratio, target_tokens=target_tokens, encoder=spec, **knobs)

    @property
    def options(self) -> Dict[str, Any]:
        """The options this Compressor was made with (a copy; the encoder as
        its spec string)."""
        return dict(self._options)

    def compress(self, context: str, question: str) -> CompressResult:
        """Compresses one context for question; returns a CompressResult
        (.text, .original_tokens, .compressed_tokens, .ratio, .ms). Raises
        InputError / LimitError / Error from the library, TypeError for
        arguments that are not str."""
        ctx_b = _c_string(context, "context")
        q_b = _c_string(question, "question")
        lib = _lib.lib()
        c = _lib.ctx(self._kv)
        res = _lib.TextResult()
        st = lib.comi_compress_text(c.handle, ctx_b, q_b, ctypes.byref(self._params),
                                    ctypes.byref(res))
        return _finish(lib, c, st, res)

    def compress_documents(self, documents: Sequence[str], question: str) -> CompressResult:
        """Compresses a list of documents jointly (the budget flows to the
        documents with the most Marginal Information Gain); one result."""
        if isinstance(documents, (str, bytes)):
            raise TypeError("documents must be a list of str, not a single %s"
                            % type(documents).__name__)
        docs_b = [_c_string(d, "documents[%d]" % i) for i, d in enumerate(documents)]
        q_b = _c_string(question, "question")
        lib = _lib.lib()
        c = _lib.ctx(self._kv)
        arr = (ctypes.c_char_p * max(len(docs_b), 1))(*docs_b)
        res = _lib.TextResult()
        st = lib.comi_compress_documents(c.handle, arr, len(docs_b), q_b,
                                         ctypes.byref(self._params), ctypes.byref(res))
        return _finish(lib, c, st, res)

    def compress_batch(self, contexts: Sequence[str], questions: Union[str, Sequence[str]],
                       return_exceptions: bool = False) -> List[Any]:
        """Compresses contexts[i] for questions[i] (or for one question
        given as a str) in a single call into the library, which runs with
        the GIL released; returns a list of CompressResult in input order,
        each the same as compress() gives.

        return_exceptions=False: the first failing item raises its
        exception (after the whole batch ran). True: a failing item's place
        in the list holds its exception (a comi.Error, or TypeError for an
        item that is not a str) and the other items are returned."""
        if isinstance(contexts, (str, bytes)):
            raise TypeError("contexts must be a sequence of str, not a single %s"
                            % type(contexts).__name__)
        contexts = list(contexts)
        n = len(contexts)
        if isinstance(questions, str):
            questions = [questions] * n
        elif isinstance(questions, bytes):
            raise TypeError("questions must be a str or a sequence of str, not bytes")
        else:
            questions = list(questions)
            if len(questions) != n:
                raise InputError("%d contexts but %d questions" % (n, len(questions)))
        out: List[Any] = [None] * n
        valid, ctx_b, q_b = [], [], []
        for i in range(n):
            try:
                cb = _c_string(contexts[i], "contexts[%d]" % i)
                qb = _c_string(questions[i], "questions[%d]" % i)
            except (TypeError, InputError) as e:
                out[i] = e
                continue
            valid.append(i)
            ctx_b.append(cb)
            q_b.append(qb)
        m = len(valid)
        if m:
            lib = _lib.lib()
            c = _lib.ctx(self._kv)
            carr = (ctypes.c_char_p * m)(*ctx_b)
            qarr = (ctypes.c_char_p * m)(*q_b)
            results = (_lib.TextResultExact * m)()
            statuses = (ctypes.c_int * m)()
            errors = (ctypes.c_void_p * m)()
            lib.comi_compress_batch(c.handle, carr, qarr, m, ctypes.byref(self._params),
                                    results, statuses, errors)
            for k, i in enumerate(valid):
                msg = ""
                if errors[k]:
                    msg = ctypes.string_at(errors[k]).decode("utf-8", "replace")
                    lib.comi_free(errors[k])
                st = statuses[k]
                if st != _lib.COMI_OK:
                    lib.comi_text_result_free(ctypes.byref(results[k]))
                    out[i] = _error(st, msg or "batch item %d failed" % i)
                    continue
                try:
                    out[i] = _finish(lib, c, st, results[k])
                except Error as e:
                    out[i] = e
        if not return_exceptions:
            for r in out:
                if isinstance(r, BaseException):
                    raise r
        return out

    def __reduce__(self):
        return (_compressor_from_options, (self._options,))

    def __repr__(self) -> str:
        opts = ", ".join("%s=%r" % kv for kv in self._options.items() if kv[1] is not None)
        return "Compressor(%s)" % opts


def _compressor_from_options(options: Dict[str, Any]) -> Compressor:
    return Compressor(**options)
