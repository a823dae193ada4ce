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


def gguf_file(kvs, tensors, version=3, align=32, fill=None):
    """kvs: list of (key, type, value) — arrays as ("arr", elem_type, list);
    tensors: list of (name, type name, ne list); fill(i, n_bytes, type name)
    gives tensor i's bytes (default: a byte ramp)."""
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
    for k, (o, nb) in enumerate(datas):
        if fill:
            data[o:o + nb] = fill(k, nb, tensors[k][1])
        else:
            for i in range(nb):
                data[o + i] = (i * 7 + 3) % 256
    return out + bytes(data)


def small_floats(k, nb, tn):
    """Deterministic values in [-0.5, 0.5) as F32 or F16."""
    size = 4 if tn == "F32" else 2
    vals = [((i * 2654435761 + k * 40503) % 1000) / 1000.0 - 0.5 for i in range(nb // size)]
    return struct.pack("<%d%s" % (len(vals), "f" if size == 4 else "e"), *vals)


def tiny_model_gguf(arch, wtype="F32", embd=8, ff=16, vocab=8, layers=1, head=2, head_kv=1):
    hd = embd // head
    kvs = [("general.architecture", "str", arch), (arch + ".embedding_length", "u32", embd),
           (arch + ".block_count", "u32", layers), (arch + ".feed_forward_length", "u32", ff),
           (arch + ".attention.head_count", "u32", head),
           (arch + ".attention.head_count_kv", "u32", head_kv),
           (arch + ".attention.layer_norm_rms_epsilon", "f32", 1e-5),
           (arch + ".rope.freq_base", "f32", 10000.0), (arch + ".context_length", "u32", 64),
           ("tokenizer.ggml.bos_token_id", "u32", 1), ("tokenizer.ggml.eos_token_id", "u32", 2)]
    t = [("token_embd.weight", wtype, [embd, vocab]), ("output_norm.weight", "F32", [embd])]
    if arch == "llama":
        t.append(("output.weight", wtype, [embd, vocab]))
    for l in range(layers):
        p = "blk.%d." % l
        t += [(p + "attn_norm.weight", "F32", [embd]), (p + "attn_q.weight", wtype, [embd, embd]),
              (p + "attn_k.weight", wtype, [embd, hd * head_kv]),
              (p + "attn_v.weight", wtype, [embd, hd * head_kv]),
              (p + "attn_output.weight", wtype, [embd, embd]),
              (p + "ffn_norm.weight", "F32", [embd]), (p + "ffn_gate.weight", wtype, [embd, ff]),
              (p + "ffn_up.weight", wtype, [embd, ff]), (p + "ffn_down.weight", wtype, [ff, embd])]
        if arch == "qwen2":
            t += [(p + "attn_q.bias", "F32", [embd]), (p + "attn_k.bias", "F32", [hd * head_kv]),
                  (p + "attn_v.bias", "F32", [hd * head_kv])]
        if arch == "qwen3":
            t += [(p + "attn_q_norm.weight", "F32", [hd]), (p + "attn_k_norm.weight", "F32", [hd])]
    return gguf_file(kvs, t, fill=small_floats)


def tiny_model_hf(arch, embd=8, ff=16, vocab=8, layers=1, head=2, head_kv=1, dtype="F16"):
    """u16 config length + config.json + model.safetensors (fuzz_model_hf input)."""
    hd = embd // head
    cfg = {"model_type": arch, "hidden_size": embd, "intermediate_size": ff,
           "num_hidden_layers": layers, "num_attention_heads": head,
           "num_key_value_heads": head_kv, "rms_norm_eps": 1e-6, "vocab_size": vocab,
           "tie_word_embeddings": arch != "llama", "hidden_act": "silu"}
    if arch == "qwen3":
        cfg["head_dim"] = hd
    t = [("model.embed_tokens.weight", dtype, [vocab, embd]), ("model.norm.weight", "F32", [embd])]
    if arch == "llama":
        t.append(("lm_head.weight", dtype, [vocab, embd]))
    for l in range(layers):
        p = "model.layers.%d." % l
        t += [(p + "input_layernorm.weight", "F32", [embd]),
              (p + "post_attention_layernorm.weight", "F32", [embd]),
              (p + "self_attn.q_proj.weight", dtype, [embd, embd]),
              (p + "self_attn.k_proj.weight", dtype, [hd * head_kv, embd]),
              (p + "self_attn.v_proj.weight", dtype, [hd * head_kv, embd]),
              (p + "self_attn.o_proj.weight", dtype, [embd, embd]),
              (p + "mlp.gate_proj.weight", dtype, [ff, embd]),
              (p + "mlp.up_proj.weight", dtype, [ff, embd]),
              (p + "mlp.down_proj.weight", dtype, [embd, ff])]
        if arch == "qwen2":
            t += [(p + "self_attn.q_proj.bias", "F32", [embd]),
                  (p + "self_attn.k_proj.bias", "F32", [hd * head_kv]),
                  (p + "self_attn.v_proj.bias", "F32", [hd * head_kv])]
        if arch == "qwen3":
            t += [(p + "self_attn.q_norm.weight", "F32", [hd]),
                  (p + "self_attn.k_norm.weight", "F32", [hd])]
    hdr, off, data = {}, 0, b""
    for k, (name, dt, shape) in enumerate(t):
        n = ST_SIZE[dt]
        for x in shape:
            n *= x
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data += small_floats(k, n, "F32" if dt == "F32" else "F16")
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8)
    c = json.dumps(cfg).encode()
    return struct.pack("<H", len(c)) + c + struct.pack("<Q", len(h)) + h + data


def seeds_model_hf():
    put("model_hf", "llama_f16", tiny_model_hf("llama"))
    put("model_hf", "qwen2_f16", tiny_model_hf("qwen2"))
    put("model_hf", "qwen3_f32_2layers", tiny_model_hf("qwen3", layers=2, dtype="F32"))


def gpt2_byte_chars():
    """GPT-2's byte -> printable character table (byte-level BPE)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def seeds_tokenizer_json():
    bc = gpt2_byte_chars()
    vocab = {bc[b]: b for b in range(256)}
    G = bc[ord(" ")]
    for i, p in enumerate(["ab", G + "t", G + "th", G + "the", "12"]):
        vocab[p] = 256 + i
    added = [{"id": 261, "content": "<|endoftext|>", "special": True, "lstrip": False,
              "rstrip": False, "normalized": False, "single_word": False}]
    bytelevel = {"version": "1.0", "added_tokens": added,
                 "normalizer": {"type": "Sequence",
                                "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]},
                 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True,
                                   "trim_offsets": True, "use_regex": True},
                 "decoder": {"type": "ByteLevel"},
                 "model": {"type": "BPE", "vocab": vocab,
                           "merges": ["a b", G + " t", [G + "t", "h"], [G + "th", "e"], "1 2"]}}
    put("tokenizer_json", "bytelevel_bpe", json.dumps(bytelevel, ensure_ascii=False))
    split = dict(bytelevel)
    split["normalizer"] = None
    split["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
         "use_regex": False}]}
    put("tokenizer_json", "split_digits_bpe", json.dumps(split, ensure_ascii=False))
    M = "\u2581"
    v = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        v["<0x%02X>" % b] = 3 + b
    for i, p in enumerate([M, M + "t", "h", "t", M + "th", "e", M + "the"]):
        v[p] = 259 + i
    spm = {"version": "1.0",
           "added_tokens": [{"id": 0, "content": "<unk>", "special": True},
                            {"id": 1, "content": "<s>", "special": True},
                            {"id": 2, "content": "</s>", "special": True}],
           "normalizer": {"type": "Sequence", "normalizers": [
               {"type": "Prepend", "prepend": M},
               {"type": "Replace", "pattern": {"String": " "}, "content": M}]},
           "pre_tokenizer": None,
           "decoder": {"type": "Sequence", "decoders": [
               {"type": "Replace", "pattern": {"String": M}, "content": " "},
               {"type": "ByteFallback"}, {"type": "Fuse"},
               {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
           "post_processor": {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}]},
           "model": {"type": "BPE", "vocab": v, "merges": [M + " t", M + "t h", M + "th e"],
                     "byte_fallback": True, "fuse_unk": True, "unk_token": "<unk>"}}
    put("tokenizer_json", "byte_fallback_bpe", json.dumps(spm, ensure_ascii=False))
    put("tokenizer_json", "not_bpe", json.dumps({"model": {"type": "WordPiece", "vocab": {}}}))
    put("tokenizer_json", "truncated", json.dumps(bytelevel)[:200])


def seeds_jsonl():
    ex = [{"id": "q1", "input": "Document [1](Title: Paris) Paris is the capital of France.\n\n"
                                "Document [2](Title: Berlin) Berlin is the capital of Germany.",
           "prompt": "What is the capital of France?", "answer": ["Paris"],
           "documents": ["Paris is the capital of France.", "Berlin is the capital of Germany."]},
          {"id": 7, "input": "The Eiffel Tower was completed in 1889.", "prompt": "When?",
           "answer": "1889"},
          {"input": "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u4e2d\u6587.",
           "prompt": "Which words?", "answer": ["the caf\u00e9", "An  r\u00e9sum\u00e9!"]}]
    put("jsonl", "good", "\n".join(json.dumps(e) for e in ex) + "\n\n")
    put("jsonl", "bad_line", json.dumps(ex[1]) + "\n{\"input\": 3}\n" + json.dumps(ex[0]) + "\n")
    put("jsonl", "missing_answer", json.dumps({"input": "x", "prompt": "y"}) + "\n")
    put("jsonl", "not_json", "{\"input\": \"x\", \n")
    put("jsonl", "invalid_utf8", b'{"input": "\xff\xfe", "prompt": "q", "answer": "a"}\n')


def seeds_text():
    ctx = ("Paris is the capital and most populous city of France. It is located on the Seine. "
           "\n\nBerlin is the capital of Germany; it has about 3.7 million inhabitants. "
           "The city is known for its museums, its nightlife and its history.\n\n"
           "Madrid, the capital of Spain, lies in the centre of the Iberian peninsula.")
    q = "What is the capital of France?"
    put("text", "plain_ratio4", bytes([3, 0x07]) + (ctx + "\0" + q).encode())
    put("text", "documents_ratio2", bytes([1, 0x0f]) + ("\0".join(ctx.split("\n\n")) + "\0" + q).encode())
    put("text", "no_question", bytes([7, 0x02]) + ctx.encode())
    put("text", "unicode", bytes([2, 0x05]) + ("Caf\u00e9 \u4e2d\u6587 \u00a0 na\u00efve\u2003word "
                                               "\U0001F600 end.\0caf\u00e9?").encode())


def seeds_model_gguf():
    put("model_gguf", "llama_f32", tiny_model_gguf("llama"))
    put("model_gguf", "llama_f16_2layers", tiny_model_gguf("llama", "F16", layers=2))
    put("model_gguf", "qwen2_f32", tiny_model_gguf("qwen2"))
    put("model_gguf", "qwen3_f16", tiny_model_gguf("qwen3", "F16", head=4, head_kv=2, embd=16))


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


def seeds_st_index():
    # The scratch directory holds a.safetensors (x, y) and b.safetensors (z).
    good = {"metadata": {"total_size": 22}, "weight_map": {"x": "a.safetensors",
                                                           "y": "a.safetensors",
                                                           "z": "b.safetensors"}}
    put("st_index", "good", json.dumps(good, indent=1))
    put("st_index", "one_shard", json.dumps({"weight_map": {"x": "a.safetensors"}}))
    put("st_index", "wrong_shard", json.dumps({"weight_map": {"x": "b.safetensors"}}))
    put("st_index", "missing_shard", json.dumps({"weight_map": {"x": "c.safetensors"}}))
    put("st_index", "escape", json.dumps({"weight_map": {"x": "../a.safetensors"}}))
    put("st_index", "subdir", json.dumps({"weight_map": {"x": "./a.safetensors"}}))
    put("st_index", "not_object", json.dumps({"weight_map": ["a.safetensors"]}))


def seeds_quant():
    # byte 0: comi_type number; then blocks of a byte ramp / special halves.
    for name, (num, be, bb) in sorted(TT.items()):
        put("quant", name, bytes([num]) + bytes((i * 37 + 11) % 256 for i in range(2 * bb)))
    halves = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01]
    put("quant", "f16_specials", bytes([1]) + b"".join(struct.pack("<H", h) for h in halves))
    floats = [0.0, -0.0, 65504.0, 65520.0, 1e-8, 5.96e-8, 2.98e-8, float("inf"), float("nan"),
              6.1e-5, 6.09e-5, -1e30]
    put("quant", "f32_specials", bytes([0]) + b"".join(struct.pack("<f", f) for f in floats))


def merge_input(args, query, context):
    """fuzz_merge: ARGS NUL, query length in floats, query, context."""
    q = b"".join(struct.pack("<f", v) for v in query)
    c = b"".join(struct.pack("<f", v) for v in context)
    return args.encode() + b"\0" + bytes([len(query)]) + q + c


def seeds_merge():
    ctx = [((i * 7) % 11 - 5) / 3.0 for i in range(4 * 12)]
    q = [0.5, -1.0, 0.25, 2.0]
    base = "--context @c --query @q --dim 4 --merge-size 3 --out @o --group-sizes-out @s"
    put("merge", "valid", merge_input(base, q, ctx))
    put("merge", "no_coarse", merge_input(base + " --no-coarse", q, ctx))
    put("merge", "no_fine", merge_input(base + " --no-fine --quiet", q, ctx))
    put("merge", "no_redundancy",
        merge_input(base + " --no-coarse-redundancy --no-fine-redundancy", q, ctx))
    put("merge", "weights", merge_input(base + " --alpha-select 2.5 --beta-select 0 "
                                        "--alpha-merge -1 --beta-merge 1e3 --threads 2", q, ctx))
    put("merge", "merge_size_1", merge_input(base.replace("3", "1"), q, ctx))
    put("merge", "merge_size_big", merge_input(base.replace("--merge-size 3", "--merge-size 100"),
                                               q, ctx))
    put("merge", "one_token", merge_input(base, q, ctx[:4]))
    put("merge", "nan", merge_input(base, q, ctx[:7] + [float("nan")] + ctx[8:]))
    put("merge", "inf_query", merge_input(base, [float("inf")] + q[1:], ctx))
    put("merge", "huge", merge_input(base + " --no-fine", q, [3e38] * 8 + [-3e38] * 8))
    put("merge", "wrong_size", merge_input(base, q, ctx[:7]))
    put("merge", "query_short", merge_input(base, q[:3], ctx))
    put("merge", "empty_context", merge_input(base, q, []))
    put("merge", "missing", merge_input("--context @c --query @q --dim 4", q, ctx))
    put("merge", "unknown", merge_input(base + " --frobnicate", q, ctx))
    put("merge", "bad_numbers", merge_input("--context @c --query @q --dim 0x4 --merge-size -1 "
                                            "--out @o", q, ctx))
    put("merge", "help", merge_input("--help", q, ctx))
    put("merge", "no_value", merge_input(base + " --dim", q, ctx))
    put("merge", "other_path", merge_input("--context /etc/passwd --query @q --dim 4 "
                                           "--merge-size 2 --out @o", q, ctx))


def seeds_answer():
    ctx = "The Panama Canal opened in 1914. It links the Atlantic and the Pacific."
    q = "When did the canal open?"
    put("answer", "context", json.dumps({"context": ctx, "question": q}))
    put("answer", "documents", json.dumps({"documents": [ctx, "Ships pay tolls.", ""],
                                           "question": q}))
    put("answer", "knobs", json.dumps({"context": ctx, "question": q, "merge_size": 2,
                                       "max_new_tokens": 3, "encoder_layers": 1,
                                       "segment_size": 5}))
    put("answer", "merge_1", json.dumps({"context": ctx, "question": q, "merge_size": 1}))
    put("answer", "empty_context", json.dumps({"context": "", "question": q}))
    put("answer", "no_context", json.dumps({"question": q}))
    put("answer", "unicode", json.dumps({"context": "caf\u00e9 \u2581 <s> </s> \U0001f600 "
                                         "\u0000 x", "question": "\u00bfqu\u00e9?"},
                                        ensure_ascii=False))
    put("answer", "specials", json.dumps({"context": "<s><tool><|im_start|>the an",
                                          "question": "</s>"}))
    put("answer", "bad_merge", json.dumps({"context": ctx, "question": q, "merge_size": 0}))
    put("answer", "bad_layers", json.dumps({"context": ctx, "question": q,
                                            "encoder_layers": 99}))
    put("answer", "bad_new", json.dumps({"context": ctx, "question": q, "max_new_tokens": 1e3}))
    put("answer", "unknown_field", json.dumps({"context": ctx, "question": q, "ratio": 4}))
    put("answer", "dup_key", '{"question": "a", "question": "b"}')
    put("answer", "not_object", "[1, 2]")
    put("answer", "truncated", '{"context": "abc", "question": "wh')


if __name__ == "__main__":
    seeds_safetensors()
    seeds_hfconfig()
    seeds_gguf()
    seeds_quant()
    seeds_st_index()
    seeds_model_gguf()
    seeds_model_hf()
    seeds_tokenizer_json()
    seeds_jsonl()
    seeds_text()
    seeds_merge()
    seeds_answer()
