#!/usr/bin/env python3
"""LongLLMLingua, the peer of the reader evaluation (README "Reader evaluation").

Compresses the first N examples of a COMI JSONL set at each ratio with
LongLLMLingua (`llmlingua` 0.2.2 from PyPI, `rank_method="longllmlingua"`)
whose scoring model is the same SmolLM2-135M-Instruct the reader uses, and
writes the rows `comi eval --task qa --methods external:longllmlingua=OUT`
scores: {"id", "ratio", "compressed", "ms" (wall), "cpu_ms" (process CPU
time), "context_tokens", "target_tokens", "compressed_tokens"}. Resumable: rows already in OUT are kept and skipped.

Not part of the build and never a dependency of comi: it runs in its own
virtual environment (scripts/setup_llmlingua.sh makes it), on the CPU, one
thread, offline:
  - the scoring model is the Q4_1 GGUF file of the reader, loaded by
    transformers (`gguf_file=`, dequantized to float32) and saved once as a
    Hugging Face directory next to it (--hf-dir);
  - llmlingua counts "OpenAI tokens" with tiktoken's gpt-3.5-turbo encoding,
    which tiktoken downloads at run time (not reachable here); those counts
    only feed its report and the budget of the `+100` context budget, so they
    are counted with the SmolLM2 tokenizer instead (the reader's tokens);
  - llmlingua 0.2.2 passes its KV cache to the model as lists, which
    transformers 4.57 no longer takes: LegacyKV converts (nothing else changes);
  - the tokenizer decodes exactly (`clean_up_tokenization_spaces` off; the
    GGUF export turns it on, SmolLM2's own tokenizer has it off): with it on,
    a question such as "... how many inhabitants ?" decodes as "...
    inhabitants?", llmlingua's get_prefix_length never finds the prefix
    again and stops on an assertion (HotpotQA's 12th example), and the
    compressed text loses spaces the documents had;
  - the coarse ranking (one question-conditioned perplexity per document, a
    full forward pass over the context) does not depend on the ratio, so it
    is computed once per example and reused for the other ratios
    (`get_rank_results` memoized on all its arguments; the output is the
    same, checked on a HotpotQA example; CPU time per example for four
    ratios 27 s instead of ~72 s on HotpotQA). The "ms"/"cpu_ms" of a row
    therefore include the ranking only for the first ratio done for that
    example; --no-rank-cache restores one ranking per call (llmlingua's own
    cost per call, for timing it).

Settings: LongLLMLingua's recommended ones for multi-document QA (the
LLMLingua README): question-aware coarse ranking of the documents
(`rank_method="longllmlingua"`, `condition_in_question="after_condition"`,
`condition_compare=True`), documents reordered by rank (`reorder_context=
"sort"`), dynamic compression ratio 0.3, `context_budget="+100"`; target =
floor(SmolLM2 tokens of the documents / ratio) tokens; the question is not
appended to the output (the reader adds it).

Usage:
  python3 scripts/llmlingua_compress.py --data ../shared/data/nq20.jsonl \
      --limit 200 --ratios 4,8,16,32 --out eval-reader/nq20/longllmlingua.jsonl
"""
import argparse
import json
import os
import sys
import time


class LegacyKV:
    """llmlingua 0.2.2 keeps the KV cache as lists of [key, value] tensors and
    cuts tokens out of them between calls (its iterative compression);
    transformers 4.57 models take and return Cache objects. This wrapper
    converts on the way in and out, so llmlingua sees the lists it expects."""

    def __init__(self, model):
        self.model = model

    def __call__(self, *args, past_key_values=None, **kw):
        from transformers import DynamicCache

        if past_key_values is not None and not isinstance(past_key_values, DynamicCache):
            past_key_values = DynamicCache.from_legacy_cache(
                tuple((k, v) for k, v in past_key_values)
            )
        out = self.model(*args, past_key_values=past_key_values, **kw)
        if getattr(out, "past_key_values", None) is not None and hasattr(
            out.past_key_values, "to_legacy_cache"
        ):
            out.past_key_values = out.past_key_values.to_legacy_cache()
        return out

    def __getattr__(self, name):
        return getattr(self.model, name)


def memoize_ranking(lingua):
    """Reuse the document ranking of the last call with the same arguments.
    compress_prompt is called once per ratio on the same documents and
    question; the ranking it starts with is the same each time."""
    import copy

    orig = lingua.get_rank_results
    last = {}

    def cached(context, question, rank_method, condition_in_question, context_tokens_length):
        key = (
            tuple(context),
            question,
            rank_method,
            condition_in_question,
            tuple(context_tokens_length),
        )
        if last.get("key") != key:
            last["key"] = key
            last["val"] = orig(
                context, question, rank_method, condition_in_question, context_tokens_length
            )
        return copy.deepcopy(last["val"])

    lingua.get_rank_results = cached


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="start at this example of the first LIMIT (to split a set over processes)",
    )
    ap.add_argument("--ratios", default="4,8,16,32")
    ap.add_argument(
        "--model",
        default=os.path.expanduser("~/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    ap.add_argument("--hf-dir", default=os.path.expanduser("~/.cache/comi/smollm2-135m-hf"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--no-rank-cache",
        action="store_true",
        help="rank the documents again for every ratio (llmlingua's own cost per call)",
    )
    a = ap.parse_args()
    if a.limit < 1 or a.skip < 0:
        ap.error("--limit must be >= 1 and --skip >= 0")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isfile(os.path.join(a.hf_dir, "config.json")):
        d, f = os.path.split(a.model)
        print(f"exporting {a.model} to {a.hf_dir} (dequantized, float32)", file=sys.stderr)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        mdl = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
        mdl.save_pretrained(a.hf_dir)
        tok.save_pretrained(a.hf_dir)
        del mdl

    import tiktoken

    hf_tok = AutoTokenizer.from_pretrained(a.hf_dir)

    class SmolCounter:  # stands in for tiktoken's gpt-3.5-turbo encoding (see above)
        def encode(self, text, **kw):
            return hf_tok(text, add_special_tokens=False).input_ids

        def decode(self, ids):
            return hf_tok.decode(ids)

    tiktoken.encoding_for_model = lambda name: SmolCounter()
    from llmlingua import PromptCompressor

    lingua = PromptCompressor(model_name=a.hf_dir, device_map="cpu")
    lingua.model = LegacyKV(lingua.model)
    lingua.tokenizer.clean_up_tokenization_spaces = False
    hf_tok.clean_up_tokenization_spaces = False
    if not a.no_rank_cache:
        memoize_ranking(lingua)

    ratios = [float(r) for r in a.ratios.split(",")]
    done = set()
    if os.path.exists(a.out):
        with open(a.out) as f:
            for line in f:
                try:
                    o = json.loads(line)
                    done.add((str(o["id"]), float(o["ratio"])))
                except (ValueError, KeyError):
                    pass  # a line cut by an interruption
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    out = open(a.out, "a")
    rows = []
    with open(a.data) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= a.limit:
                break
    rows = rows[a.skip :]
    todo = sum(1 for x in rows for r in ratios if (str(x["id"]), r) not in done)
    print(f"{len(rows)} examples, {todo} runs to do", file=sys.stderr)
    n = failed = 0
    t_start = time.time()
    for x in rows:
        docs = x.get("documents") or [x["input"]]
        for r in ratios:
            key = (str(x["id"]), r)
            if key in done:
                continue
            ctx_tokens = sum(len(hf_tok(d, add_special_tokens=False).input_ids) for d in docs)
            target = max(1, ctx_tokens // int(r))
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                res = lingua.compress_prompt(
                    docs,
                    question=x["prompt"],
                    target_token=target,
                    rank_method="longllmlingua",
                    condition_in_question="after_condition",
                    condition_compare=True,
                    reorder_context="sort",
                    dynamic_context_compression_ratio=0.3,
                    context_budget="+100",
                    concate_question=False,
                )
            except Exception as e:  # llmlingua's own failure: report it, leave the cell missing
                failed += 1
                print(
                    f"FAILED id {x['id']} ratio {r:g}: {type(e).__name__}: {e}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            ms = (time.perf_counter() - t0) * 1e3
            cpu_ms = (time.process_time() - c0) * 1e3
            text = res["compressed_prompt"]
            o = {
                "id": x["id"],
                "ratio": r,
                "compressed": text,
                "ms": ms,
                "cpu_ms": cpu_ms,
                "context_tokens": ctx_tokens,
                "target_tokens": target,
                "compressed_tokens": len(hf_tok(text, add_special_tokens=False).input_ids),
            }
            out.write(json.dumps(o, ensure_ascii=False) + "\n")
            out.flush()
            n += 1
            el = time.time() - t_start
            print(
                f"{n}/{todo} id {x['id']} ratio {r:g}: {ms / 1e3:.1f} s ({cpu_ms / 1e3:.1f} s CPU), "
                f"{o['compressed_tokens']}/{ctx_tokens} tokens, {el:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if failed:
        print(f"{failed} runs failed inside llmlingua (cells left missing)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
