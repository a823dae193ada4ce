#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpora in tests/fuzz/corpus/ (small
hand-made valid and broken inputs for each fuzz target). Deterministic;
re-run after changing it: python3 tests/fuzz/make_seeds.py"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ----------------------------------------------------------

ST_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
           "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def st_file(tensors, metadata=None, pad_mod=0):
    """tensors: list of (name, dtype, shape); data is a byte ramp."""
    hdr, off = {}, 0
    for name, dt, shape in tensors:
        n = ST_SIZE[dt]
        for s in shape:
            n *= s
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    if metadata is not None:
        hdr["__metadata__"] = metadata
    h = json.dumps(hdr, separators=(",", ":")).encode()
    while (8 + len(h)) % 8 != pad_mod:
        h += b" "
    return struct.pack("<Q", len(h)) + h + bytes(i % 251 for i in range(off))


def llama_tensors(hidden=8, ffn=12, vocab=16, layers=1, bias=False, qk_norm=False):
    t = [("model.embed_tokens.weight", "F16", [vocab, hidden]),
         ("model.norm.weight", "F32", [hidden])]
    for l in range(layers):
        p = "model.layers.%d." % l
        t += [(p + "input_layernorm.weight", "F32", [hidden]),
              (p + "post_attention_layernorm.weight", "F32", [hidden]),
              (p + "self_attn.q_proj.weight", "F16", [hidden, hidden]),
              (p + "self_attn.k_proj.weight", "F16", [hidden // 2, hidden]),
              (p + "self_attn.v_proj.weight", "F16", [hidden // 2, hidden]),
              (p + "self_attn.o_proj.weight", "F16", [hidden, hidden]),
              (p + "mlp.gate_proj.weight", "F16", [ffn, hidden]),
              (p + "mlp.up_proj.weight", "F16", [ffn, hidden]),
              (p + "mlp.down_proj.weight", "F16", [hidden, ffn])]
        if bias:
            t += [(p + "self_attn.q_proj.bias", "F32", [hidden]),
                  (p + "self_attn.k_proj.bias", "F32", [hidden // 2])]
        if qk_norm:
            t += [(p + "self_attn.q_norm.weight", "F32", [4])]
    return t


def seeds_safetensors():
    put("safetensors", "llama_mini", st_file(llama_tensors(), {"format": "pt"}))
    put("safetensors", "qwen2_mini_misaligned", st_file(llama_tensors(bias=True), None, 3))
    put("safetensors", "qwen3_mini", st_file(llama_tensors(qk_norm=True, layers=2)))
    put("safetensors", "all_dtypes",
        st_file([("t_" + d, d, [2, 3]) for d in sorted(ST_SIZE)], {"a": "b"}))
    put("safetensors", "corners", st_file([("scalar", "F32", []), ("empty", "F16", [0, 4]),
                                           ("bf", "BF16", [1, 1, 2, 2]), ("ids", "I64", [3])]))
    put("safetensors", "empty_header", st_file([]))
    put("safetensors", "bad_huge_len", b"\xff" * 16)
    put("safetensors", "bad_len_past_eof", struct.pack("<Q", 1000) + b"{}")
    put("safetensors", "bad_overlap", struct.pack("<Q", 120) +
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'.ljust(120) + bytes(12))
    put("safetensors", "bad_size", struct.pack("<Q", 56) +
        b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'.ljust(56) + bytes(8))


# ---- config.json ----------------------------------------------------------

BASE = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "intermediate_size": 176, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
        "max_position_embeddings": 1024, "vocab_size": 32000, "tie_word_embeddings": False,
        "hidden_act": "silu", "torch_dtype": "float32"}


def cfg(**kw):
    c = dict(BASE)
    for k, v in kw.items():
        if v is None and k.startswith("del_"):
            c.pop(k[4:], None)
        else:
            c[k] = v
    return json.dumps(c, indent=1)


def seeds_hfconfig():
    put("hfconfig", "llama", cfg())
    put("hfconfig", "qwen2", cfg(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                                 tie_word_embeddings=True, bos_token_id=151643,
                                 eos_token_id=151645, use_sliding_window=False))
    put("hfconfig", "qwen3", cfg(model_type="qwen3", head_dim=16, attention_bias=False,
                                 eos_token_id=[1, 2, 3], torch_dtype="bfloat16"))
    put("hfconfig", "llama3_rope", cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                     "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 8192}))
    put("hfconfig", "yarn_rope", cfg(rope_scaling={"type": "yarn", "factor": 4}))
    put("hfconfig", "rope_parameters", cfg(del_rope_theta=None, del_torch_dtype=None,
                                           dtype="float16",
                                           rope_parameters={"rope_theta": 1e6,
                                                            "rope_type": "default"}))
    put("hfconfig", "nulls", cfg(head_dim=None, rope_scaling=None, bos_token_id=None))
    put("hfconfig", "missing_hidden", cfg(del_hidden_size=None))
    put("hfconfig", "bad_types", cfg(hidden_size="64", tie_word_embeddings=1))
    put("hfconfig", "not_json", '{"model_type": "llama", "hidden_size": 6')


# ---- GGUF -----------------------------------------------------------------

GT = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7,
      "str": 8, "arr": 9, "u64": 10, "i64": 11, "f64": 12}
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q",
       11: "<q", 12: "<d"}
# comi_type: (number, block elements, block bytes)
TT = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34),
      "Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2), "I32": (26, 1, 4)}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == GT["str"]:
        return gstr(v)
    return struct.pack(FMT[t], v)


def gguf_file(kvs, tensors, version=3, align=32):
    """kvs: list of (key, type, value) — arrays as ("arr", elem_type, list);
    tensors: list of (name, type name, ne list)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gstr(key) + struct.pack("<I", GT[t])
        if t == "arr":
            et, items = v
            out += struct.pack("<IQ", GT[et], len(items))
            out += b"".join(gval(GT[et], x) for x in items)
        else:
            out += gval(GT[t], v)
    off, datas = 0, []
    for name, tn, ne in tensors:
        num, be, bb = TT[tn]
        n = 1
        for x in ne:
            n *= x
        nbytes = n // be * bb
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        out += struct.pack("<IQ", num, off)
        datas.append((off, nbytes))
        off += (nbytes + align - 1) // align * align
    out += bytes((-len(out)) % align)
    data = bytearray(off)
    for o, nb in datas:
        for i in range(nb):
            data[o + i] = (i * 7 + 3) % 256
    return out + bytes(data)


def seeds_gguf():
    kvs = [("general.architecture", "str", "llama"), ("general.name", "str", "tiny"),
           ("llama.block_count", "u32", 2), ("llama.embedding_length", "u32", 64),
           ("llama.attention.head_count", "u32", 4),
           ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5),
           ("llama.rope.freq_base", "f32", 10000.0),
           ("tokenizer.ggml.model", "str", "llama"),
           ("tokenizer.ggml.tokens", "arr", ("str", ["<unk>", "<s>", "</s>", "a", "b"])),
           ("tokenizer.ggml.scores", "arr", ("f32", [0.0, 0.0, 0.0, -1.0, -2.0])),
           ("tokenizer.ggml.token_type", "arr", ("i32", [2, 3, 3, 1, 1])),
           ("tokenizer.ggml.bos_token_id", "u32", 1),
           ("tokenizer.ggml.add_bos_token", "bool", 1)]
    tensors = [("token_embd.weight", "F16", [64, 5]), ("output_norm.weight", "F32", [64]),
               ("blk.0.attn_q.weight", "Q8_0", [64, 2]), ("blk.0.ffn_down.weight", "Q4_K", [256, 1]),
               ("blk.0.ffn_up.weight", "Q6_K", [256, 1]), ("blk.1.attn_k.weight", "Q4_0", [32, 2]),
               ("blk.1.attn_v.weight", "BF16", [8, 2, 2])]
    put("gguf", "llama_mixed_v3", gguf_file(kvs, tensors))
    put("gguf", "llama_mixed_v2", gguf_file(kvs, tensors, version=2))
    allkv = [("k." + t, t, v) for t, v in [("u8", 1), ("i8", -1), ("u16", 2), ("i16", -2),
                                            ("u32", 3), ("i32", -3), ("f32", 1.5),
                                            ("bool", 0), ("str", "x"), ("u64", 4),
                                            ("i64", -4), ("f64", 2.5)]]
    allkv += [("a.u64", "arr", ("u64", [1, 2])), ("a.f64", "arr", ("f64", [0.5])),
              ("a.empty", "arr", ("str", [])), ("general.alignment", "u32", 64)]
    put("gguf", "all_kv_types_align64", gguf_file(allkv, [("t", "I32", [3])], align=64))
    put("gguf", "kv_only", gguf_file(kvs[:3], []))
    put("gguf", "empty", gguf_file([], []))
    put("gguf", "bad_magic", b"GGUX" + gguf_file(kvs[:2], [])[4:])
    put("gguf", "bad_count", b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60))
    put("gguf", "truncated", gguf_file(kvs, tensors)[:300])


if __name__ == "__main__":
    seeds_safetensors()
    seeds_hfconfig()
    seeds_gguf()
