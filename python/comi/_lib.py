"""Loading libcomi.so and declaring its C interface for ctypes.

The library is found, in order, at $COMI_LIBRARY (when set), next to this
module (comi/libcomi.so: where `pip install .` puts the library it built),
or at build/libcomi.so of the checkout this package sits in (python/comi/ ->
../../build/). The structures below mirror the leading fields of
include/comi.h's structures (tests check the order). Each ends in a
reserved tail larger than any fields the library may add later: the library
fills the structures itself (comi_text_default_params, comi_compress_*), so
fields this binding does not name keep their library defaults instead of
being overrun.
"""

import ctypes
import os
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGED_PATH = os.path.join(_HERE, "libcomi.so")
_CHECKOUT_PATH = os.path.normpath(os.path.join(_HERE, "..", "..", "build", "libcomi.so"))

COMI_OK = 0
RESERVED_BYTES = 64  # COMI_RESERVED_BYTES: the tail every public C struct keeps for growth


class CtxParams(ctypes.Structure):
    """comi_ctx_params (every field, in order, its `reserved` tail too)."""

    _fields_ = [
        ("n_threads", ctypes.c_int32),
        ("max_context_tokens", ctypes.c_int64),
        ("max_bytes", ctypes.c_uint64),
        ("kv_type", ctypes.c_int32),
        ("reserved", ctypes.c_uint8 * (RESERVED_BYTES - 4)),
    ]


class TextParams(ctypes.Structure):
    """comi_text_params (include/comi.h)."""

    _fields_ = [
        ("ratio", ctypes.c_double),
        ("target_tokens", ctypes.c_int64),
        ("encoder", ctypes.c_void_p),
        ("keep_titles", ctypes.c_bool),
        ("coarse", ctypes.c_bool),
        ("redundancy", ctypes.c_bool),
        ("alpha", ctypes.c_float),
        ("beta", ctypes.c_float),
        ("temperature", ctypes.c_float),
        ("context_weight", ctypes.c_float),
        ("min_unit_words", ctypes.c_int32),
        ("min_group_words", ctypes.c_int32),
        ("window_words", ctypes.c_int32),
        ("bridge_weight", ctypes.c_float),
        ("centrality_weight", ctypes.c_float),
        ("lead_weight", ctypes.c_float),
        ("summary", ctypes.c_int32),
        ("tokenizer", ctypes.c_void_p),
        ("unit", ctypes.c_int32),
        ("answer_first", ctypes.c_bool),
        ("_reserved", ctypes.c_uint8 * 256),  # later fields, left at their defaults
    ]


class TextResult(ctypes.Structure):
    """comi_text_result (include/comi.h); `text` is freed by the library."""

    _fields_ = [
        ("text", ctypes.c_void_p),
        ("original_tokens", ctypes.c_int64),
        ("compressed_tokens", ctypes.c_int64),
        ("ratio", ctypes.c_double),
        ("ms", ctypes.c_double),
        ("_reserved", ctypes.c_uint8 * 256),  # later fields
    ]


class TextResultExact(ctypes.Structure):
    """comi_text_result with exactly the C fields, its `reserved` tail
    (COMI_RESERVED_BYTES) included: the element of the arrays
    comi_compress_batch fills, whose stride must be the C one (tests check
    the fields match the header exactly)."""

    _fields_ = [f for f in TextResult._fields_ if f[0] != "_reserved"] + [
        ("reserved", ctypes.c_uint8 * RESERVED_BYTES)]


def library_path():
    """The path libcomi.so is (or would be) loaded from: $COMI_LIBRARY, else
    the library installed inside the package, else the checkout's build."""
    env = os.environ.get("COMI_LIBRARY")
    if env:
        return env
    if os.path.exists(_PACKAGED_PATH):
        return _PACKAGED_PATH
    return _CHECKOUT_PATH


def _declare(lib):
    c = ctypes
    lib.comi_version.restype = c.c_char_p
    lib.comi_version.argtypes = []
    lib.comi_ctx_default_params.restype = CtxParams
    lib.comi_ctx_default_params.argtypes = []
    lib.comi_ctx_new.restype = c.c_void_p
    lib.comi_ctx_new.argtypes = [c.POINTER(CtxParams)]
    lib.comi_ctx_free.restype = None
    lib.comi_ctx_free.argtypes = [c.c_void_p]
    lib.comi_errmsg.restype = c.c_char_p
    lib.comi_errmsg.argtypes = [c.c_void_p]
    lib.comi_status_str.restype = c.c_char_p
    lib.comi_status_str.argtypes = [c.c_int]
    lib.comi_encoder_load.restype = c.c_int
    lib.comi_encoder_load.argtypes = [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.comi_encoder_free.restype = None
    lib.comi_encoder_free.argtypes = [c.c_void_p]
    lib.comi_text_default_params.restype = TextParams
    lib.comi_text_default_params.argtypes = []
    lib.comi_compress_text.restype = c.c_int
    lib.comi_compress_text.argtypes = [
        c.c_void_p, c.c_char_p, c.c_char_p, c.POINTER(TextParams), c.POINTER(TextResult)]
    lib.comi_compress_documents.restype = c.c_int
    lib.comi_compress_documents.argtypes = [
        c.c_void_p, c.POINTER(c.c_char_p), c.c_size_t, c.c_char_p, c.POINTER(TextParams),
        c.POINTER(TextResult)]
    lib.comi_text_result_free.restype = None
    lib.comi_text_result_free.argtypes = [c.c_void_p]
    lib.comi_compress_batch.restype = c.c_int
    lib.comi_compress_batch.argtypes = [
        c.c_void_p, c.POINTER(c.c_char_p), c.POINTER(c.c_char_p), c.c_size_t,
        c.POINTER(TextParams), c.POINTER(TextResultExact), c.POINTER(c.c_int),
        c.POINTER(c.c_void_p)]
    lib.comi_free.restype = None
    lib.comi_free.argtypes = [c.c_void_p]
    lib.comi_tokenizer_load.restype = c.c_int
    lib.comi_tokenizer_load.argtypes = [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.comi_tokenizer_free.restype = None
    lib.comi_tokenizer_free.argtypes = [c.c_void_p]
    lib.comi_text_set_unit.restype = c.c_int
    lib.comi_text_set_unit.argtypes = [c.c_void_p, c.POINTER(TextParams), c.c_char_p]


_lib = None
_lib_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use). Raises ImportError naming
    the path tried when it cannot be loaded."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                path = library_path()
                try:
                    loaded = ctypes.CDLL(path)
                except OSError as e:
                    raise ImportError(
                        "cannot load libcomi from %r (%s); install the package with `pip "
                        "install .`, run `make` in the checkout, or set COMI_LIBRARY to the "
                        "path of libcomi.so" % (path, e)) from e
                try:
                    _declare(loaded)
                    _declare_pipeline(loaded)
                except AttributeError as e:
                    raise ImportError("%r is not a compatible libcomi: %s" % (path, e)) from e
                _lib = loaded
    return _lib


class _Ctx:
    """One comi_ctx (per-thread state) with the resource limits set when it
    was made; freed with the object."""

    def __init__(self, max_context_tokens=0, max_bytes=0, kv_type=0):
        self._lib = lib()
        params = self._lib.comi_ctx_default_params()
        params.max_context_tokens = max_context_tokens
        params.max_bytes = max_bytes
        params.kv_type = kv_type
        self.handle = self._lib.comi_ctx_new(ctypes.byref(params))
        if not self.handle:
            raise MemoryError("comi_ctx_new failed")

    def errmsg(self):
        return self._lib.comi_errmsg(self.handle).decode("utf-8", "replace")

    def __del__(self):
        h, self.handle = getattr(self, "handle", None), None
        if h:
            self._lib.comi_ctx_free(h)


_local = threading.local()
_limits_lock = threading.Lock()
# The limits every context is made with, and a generation number that
# set_limits() bumps so each thread remakes its context on its next call.
_limits = {"max_context_tokens": 0, "max_bytes": 0, "generation": 0}


def set_limits(max_context_tokens, max_bytes):
    with _limits_lock:
        _limits["max_context_tokens"] = max_context_tokens
        _limits["max_bytes"] = max_bytes
        _limits["generation"] += 1


def get_limits():
    with _limits_lock:
        return _limits["max_context_tokens"], _limits["max_bytes"]


KV_F32, KV_F16 = 0, 1  # COMI_KV_F32, COMI_KV_F16 (comi_ctx_params.kv_type)
KV_TYPES = {"f32": KV_F32, "f16": KV_F16}


def ctx(kv_type=KV_F32):
    """This thread's comi_ctx whose sessions keep their KV cache in kv_type
    (KV_F32 or KV_F16): a context is not thread-safe, so each thread gets its
    own (one per KV type), created on first use and again after set_limits."""
    with _limits_lock:
        gen, tokens, nbytes = (_limits["generation"], _limits["max_context_tokens"],
                               _limits["max_bytes"])
    if getattr(_local, "generation", None) != gen:
        _local.ctxs = {}
        _local.generation = gen
    c = _local.ctxs.get(kv_type)
    if c is None:
        c = _local.ctxs[kv_type] = _Ctx(tokens, nbytes, kv_type)
    return c


# ---- the soft pipeline ----------------------------------------------------

class MergeParams(ctypes.Structure):
    """comi_merge_params (include/comi.h); nested in AnswerParams, so it must
    match the C layout exactly, its `reserved` tail (COMI_RESERVED_BYTES) too."""

    _fields_ = [
        ("merge_size", ctypes.c_int64),
        ("alpha_select", ctypes.c_float),
        ("beta_select", ctypes.c_float),
        ("alpha_merge", ctypes.c_float),
        ("beta_merge", ctypes.c_float),
        ("coarse", ctypes.c_bool),
        ("fine", ctypes.c_bool),
        ("coarse_redundancy", ctypes.c_bool),
        ("fine_redundancy", ctypes.c_bool),
        ("reserved", ctypes.c_uint8 * RESERVED_BYTES),
    ]


class PipelineLoadParams(ctypes.Structure):
    """comi_pipeline_load_params (include/comi.h)."""

    _fields_ = [
        ("model", ctypes.c_char_p),
        ("checkpoint", ctypes.c_char_p),
        ("tokenizer", ctypes.c_char_p),
        ("lora_alpha", ctypes.c_float),
        ("_reserved", ctypes.c_uint8 * 256),
    ]


class PipelineInfo(ctypes.Structure):
    """comi_pipeline_info (include/comi.h)."""

    _fields_ = [
        ("description", ctypes.c_char_p),
        ("encoder_layers", ctypes.c_int32),
        ("encoder_n_layer", ctypes.c_int32),
        ("d_encoder", ctypes.c_int32),
        ("d_decoder", ctypes.c_int32),
        ("fusion_layers", ctypes.c_int32),
        ("alignment", ctypes.c_bool),
        ("decoder_lora", ctypes.c_bool),
        ("shared_model", ctypes.c_bool),
        ("_reserved", ctypes.c_uint8 * 256),
    ]


class AnswerParams(ctypes.Structure):
    """comi_answer_params (include/comi.h)."""

    _fields_ = [
        ("encoder_layers", ctypes.c_int32),
        ("segment_size", ctypes.c_int64),
        ("merge", MergeParams),
        ("max_new_tokens", ctypes.c_int32),
        ("repetition_penalty", ctypes.c_float),
        ("penalty_per_occurrence", ctypes.c_bool),
        ("max_bytes", ctypes.c_uint64),
        ("keep_logits", ctypes.c_bool),
        ("encode_cache", ctypes.c_void_p),
        ("_reserved", ctypes.c_uint8 * 256),
    ]


class AnswerResult(ctypes.Structure):
    """comi_answer_result (include/comi.h); freed by comi_answer_result_free."""

    _fields_ = [
        ("text", ctypes.c_void_p),
        ("ids", ctypes.POINTER(ctypes.c_int32)),
        ("n_ids", ctypes.c_int32),
        ("empty_context", ctypes.c_bool),
        ("n_context_tokens", ctypes.c_int64),
        ("n_question_tokens", ctypes.c_int64),
        ("n_segments", ctypes.c_int64),
        ("encoder_layers", ctypes.c_int32),
        ("d_model", ctypes.c_int64),
        ("n_memory", ctypes.c_int64),
        ("memory", ctypes.POINTER(ctypes.c_float)),
        ("n_groups", ctypes.c_int64),
        ("group_sizes", ctypes.POINTER(ctypes.c_int32)),
        ("n_vocab", ctypes.c_int64),
        ("logits", ctypes.POINTER(ctypes.c_float)),
        ("ms_tokenize", ctypes.c_double),
        ("ms_encode", ctypes.c_double),
        ("ms_merge", ctypes.c_double),
        ("ms_fuse", ctypes.c_double),
        ("ms_prefill", ctypes.c_double),
        ("ms_generate", ctypes.c_double),
        ("ms_total", ctypes.c_double),
        ("_reserved", ctypes.c_uint8 * 256),
    ]


def _declare_pipeline(lib):
    c = ctypes
    lib.comi_pipeline_load_default_params.restype = PipelineLoadParams
    lib.comi_pipeline_load_default_params.argtypes = []
    lib.comi_pipeline_load.restype = c.c_int
    lib.comi_pipeline_load.argtypes = [c.c_void_p, c.POINTER(PipelineLoadParams),
                                       c.POINTER(c.c_void_p)]
    lib.comi_pipeline_free.restype = None
    lib.comi_pipeline_free.argtypes = [c.c_void_p]
    lib.comi_pipeline_get_info.restype = None
    lib.comi_pipeline_get_info.argtypes = [c.c_void_p, c.POINTER(PipelineInfo)]
    lib.comi_pipeline_answer_params.restype = AnswerParams
    lib.comi_pipeline_answer_params.argtypes = [c.c_void_p]
    lib.comi_pipeline_answer.restype = c.c_int
    lib.comi_pipeline_answer.argtypes = [c.c_void_p, c.c_void_p, c.c_char_p, c.c_char_p,
                                         c.POINTER(AnswerParams), c.POINTER(AnswerResult)]
    lib.comi_pipeline_answer_documents.restype = c.c_int
    lib.comi_pipeline_answer_documents.argtypes = [
        c.c_void_p, c.c_void_p, c.POINTER(c.c_char_p), c.c_size_t, c.c_char_p,
        c.POINTER(AnswerParams), c.POINTER(AnswerResult)]
    lib.comi_answer_result_free.restype = None
    lib.comi_answer_result_free.argtypes = [c.POINTER(AnswerResult)]
