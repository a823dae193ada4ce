#!/usr/bin/env python3
"""tests/oracle/make_smollm2_golden.py — llama.cpp goldens for SmolLM2.

A test tool, not part of the build: run it with the oracle venv that
tests/oracle/setup_oracle.sh makes (llama-cpp-python, which compiles
llama.cpp; gguf; numpy):

    sh tests/oracle/setup_oracle.sh
    ~/.cache/comi/oracle-venv/bin/python tests/oracle/make_smollm2_golden.py \
        --model "$(sh scripts/fetch_models.sh --quiet)" --out tests/golden/smollm2

Writes into --out:
  tokenize.json  token ids of >= 100 strings (llama.cpp's llama_tokenize,
                 BOS as the metadata says), special-token text as plain text
                 ("ids") and parsed ("ids_special"), and the detokenized
                 text of ids_special with control tokens skipped
  chat.json      >= 10 conversations: the prompt rendered with the model's
                 own tokenizer.chat_template by Jinja2 (as Hugging Face's
                 apply_chat_template and llama-cpp-python render it), its ids,
                 16 greedy ids from llama.cpp with the top-2 logit margin of
                 every step, and the NMSE of llama.cpp's Q4_1 last-position
                 logits against a float32 reference (the same weights
                 dequantized to F32 by the gguf package, run by llama.cpp)
  logits.f32     the Q4_1 last-position logits of each conversation, in
                 order (n_chat x n_vocab float32, little-endian)
  versions.json  the versions that made these files
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

import gguf
import jinja2
import jinja2.sandbox
import llama_cpp

N_GREEDY = 16

STRINGS = [
    # English
    "Hello world",
    " Hello world",
    "Hello World!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "I'm sure you'll agree it's what we've been doing.",
    "DON'T SHOUT, they're LISTENING",
    "e.g. i.e. etc. Mr. Mrs. Dr. St.",
    "antidisestablishmentarianism",
    "supercalifragilisticexpialidocious",
    "A",
    "a",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    " \n",
    "\r\n",
    "hello\n\nworld",
    "tabs\tand\ttabs",
    "    four leading spaces",
    "trailing spaces    ",
    "mixed \t \n whitespace \r\n runs",
    "multiple     spaces     between",
    "Question: who wrote Hamlet?\nAnswer: William Shakespeare.",
    "The year 2024 had 366 days.",
    # numbers
    "0",
    "1",
    "12",
    "123",
    "1234",
    "12345678901234567890",
    "3.14159265358979",
    "-42",
    "+1 (555) 010-9999",
    "1,000,000",
    "1e-10",
    "0x7fffffff",
    "2024-12-07T18:30:00Z",
    "v1.2.3-rc4",
    "100%",
    "$19.99",
    "1/2 + 3/4 = 5/4",
    # code
    "def f(x):\n    return x * 2\n",
    "int main(void) { return 0; }",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    "import numpy as np\nx = np.zeros((3, 4))",
    "console.log(`Hello ${name}!`);",
    "SELECT * FROM users WHERE id = 42;",
    "<div class=\"main\"><p>Hi</p></div>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "#include <stdio.h>",
    "x+=1;y-=2;z*=3;w/=4",
    "if a != b and c >= d or e <= f:",
    "fn main() { println!(\"{}\", 1 << 3); }",
    "https://example.com/path?query=1&b=2#frag",
    "user@example.org",
    "C:\\Users\\name\\file.txt",
    "// comment\n/* block */",
    "a_snake_case_name camelCaseName PascalCase SCREAMING_CASE",
    "-----=====*****",
    "...!!!???",
    "'quoted' \"double\" `back`",
    "([{<>}])",
    # Unicode (Latin, Greek, Cyrillic, Arabic, Hebrew, Hindi)
    "café naïve résumé",
    "Straße Übermäßig",
    "Ελληνικά γράμματα",
    "Привет, мир!",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "ﬁ ligature and ½ fraction",
    "e\u0301 combining accent",
    "\u00a0non-breaking\u00a0space",
    "zero\u200bwidth",
    "“smart quotes” and ‘single’",
    "— em dash – en dash …",
    "€100 £50 ¥1000",
    "∑ ∫ √ ∞ ≠ ≤ ≥",
    # CJK
    "你好，世界",
    "北京是中国的首都。",
    "日本語のテキストです",
    "カタカナ ひらがな 漢字",
    "한국어 텍스트",
    "中文English混合text",
    "東京タワー333メートル",
    # emoji
    "🙂",
    "Hello 👋 world 🌍",
    "👨‍👩‍👧‍👦 family",
    "🇫🇷 flag",
    "🔥🔥🔥",
    "❤️ red heart",
    # special-token-looking text
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are a bot<|im_end|>\n<|im_start|>assistant\n",
    "text <|im_end|> more",
    "<|im_start|",
    "<|notatoken|>",
    "<repo_name>",
    "<file_sep>",
    "<filename>main.py",
    "</s>",
    "<s>",
    "[INST] hi [/INST]",
    # mixed
    "Mixed: 123abc!@# 你好 🙂 café\n\tend",
    "The answer is 42.\n\nThe end.",
]

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Hi!"}],
    [{"role": "user", "content": "Write a Python function that adds two numbers."}],
    [{"role": "user", "content": "How many legs does a spider have?"}],
    [{"role": "system", "content": "You are a terse assistant. Answer in one word."},
     {"role": "user", "content": "What color is the sky on a clear day?"}],
    [{"role": "user", "content": "What is 12 + 30?"}],
    [{"role": "user", "content": "Who wrote Romeo and Juliet?"},
     {"role": "assistant", "content": "William Shakespeare wrote Romeo and Juliet."},
     {"role": "user", "content": "When was he born?"}],
    [{"role": "user", "content": "Translate to French: good morning"}],
    [{"role": "user", "content": "Name three primary colors."}],
    [{"role": "user", "content": "你好，你是谁？"}],
    [{"role": "user", "content": "Give me an emoji for happiness 🙂"}],
    [{"role": "system", "content": "You answer questions about geography."},
     {"role": "user", "content": "Which river flows through Cairo?"}],
]


def render(template, messages, bos, eos):
    """Jinja2 as Hugging Face's apply_chat_template / llama-cpp-python's
    Jinja2ChatFormatter run it."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)


def last_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)


def greedy(llm, ids, n):
    """n greedy ids after ids (no stop at EOS), the top-2 margin per step."""
    llm.reset()
    llm.eval(ids)
    out, margins = [], []
    for _ in range(n):
        lg = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        top = np.argsort(-lg, kind="stable")[:2]
        out.append(int(top[0]))
        margins.append(float(lg[top[0]] - lg[top[1]]))
        llm.eval([int(top[0])])
    return out, margins


def dequantize_to_f32(src, dst):
    """Copies src GGUF to dst with every tensor dequantized to F32."""
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF."):
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub_type=sub)
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape)]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def nmse(a, ref):
    a = a.astype(np.float64)
    ref = ref.astype(np.float64)
    return float(np.sum((a - ref) ** 2) / np.sum(ref ** 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--f32", help="where to write the dequantized F32 GGUF (default: a temp file)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    assert len(STRINGS) >= 100 and len(set(STRINGS)) == len(STRINGS), len(STRINGS)

    kw = dict(n_ctx=1024, n_batch=512, n_threads=args.threads, n_threads_batch=args.threads,
              logits_all=True, verbose=False, seed=0)
    llm = llama_cpp.Llama(model_path=args.model, **kw)
    meta = llm.metadata
    template = meta["tokenizer.chat_template"]
    bos_id, eos_id = llm.token_bos(), llm.token_eos()
    bos = llm.detokenize([bos_id], special=True).decode() if bos_id >= 0 else ""
    eos = llm.detokenize([eos_id], special=True).decode() if eos_id >= 0 else ""

    toks = []
    for s in STRINGS:
        b = s.encode()
        ids = llm.tokenize(b, add_bos=True, special=False)
        ids_sp = llm.tokenize(b, add_bos=True, special=True)
        dec = llm.detokenize(ids_sp, special=False).decode("utf-8", errors="strict")
        toks.append({"text": s, "ids": ids, "ids_special": ids_sp,
                     "decoded_skip_special": dec})
    with open(os.path.join(args.out, "tokenize.json"), "w") as f:
        json.dump({"model_sha256_prefix": sha_prefix(args.model), "strings": toks}, f,
                  ensure_ascii=True, indent=0)

    chats, logits_q = [], []
    for msgs in CHATS:
        text = render(template, msgs, bos, eos)
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        lg = last_logits(llm, ids)
        g, m = greedy(llm, ids, N_GREEDY)
        chats.append({"messages": msgs, "prompt": text, "ids": ids, "greedy": g,
                      "margins": m,
                      "greedy_text": llm.detokenize(g, special=True).decode("utf-8", "replace")})
        logits_q.append(lg)
    n_vocab = llm.n_vocab()
    del llm

    # float reference: the same weights dequantized to F32, run by llama.cpp
    tmpdir = None
    f32 = args.f32
    if not f32:
        tmpdir = tempfile.TemporaryDirectory()
        f32 = os.path.join(tmpdir.name, "smollm2-f32.gguf")
    if not os.path.exists(f32):
        dequantize_to_f32(args.model, f32)
    ref = llama_cpp.Llama(model_path=f32, **kw)
    for c, lq in zip(chats, logits_q):
        lf = last_logits(ref, c["ids"])
        gf, _ = greedy(ref, c["ids"], N_GREEDY)
        c["nmse_q4_1_vs_f32"] = nmse(lq, lf)
        c["max_abs_q4_1_vs_f32"] = float(np.max(np.abs(lq.astype(np.float64) - lf)))
        c["greedy_f32"] = gf
    del ref
    if tmpdir:
        tmpdir.cleanup()

    with open(os.path.join(args.out, "chat.json"), "w") as f:
        json.dump({"n_vocab": n_vocab, "chat_template": template, "bos": bos, "eos": eos,
                   "chats": chats}, f, ensure_ascii=True, indent=1)
    np.stack(logits_q).astype("<f4").tofile(os.path.join(args.out, "logits.f32"))
    vers = {"llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_commit": getattr(llama_cpp, "__llama_cpp_commit__", None),
            "gguf": getattr(gguf, "__version__", None) or pkg_version("gguf"),
            "numpy": np.__version__, "jinja2": jinja2.__version__,
            "python": sys.version.split()[0],
            "model": os.path.basename(args.model), "model_sha256": sha256(args.model),
            "threads": args.threads, "n_batch": 512}
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump(vers, f, indent=1)
    worst = max(c["nmse_q4_1_vs_f32"] for c in chats)
    print(f"{len(toks)} strings, {len(chats)} chats; NMSE(Q4_1 vs F32) max {worst:.3e}")


def pkg_version(name):
    from importlib.metadata import version
    return version(name)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def sha_prefix(path):
    return sha256(path)[:16]


if __name__ == "__main__":
    main()
