#!/usr/bin/env python3
"""bench/train_torch.py — the COMI training step in PyTorch on the CPU, the
reference point for build/bench/bench_train (bench/train_vs_torch.sh runs
both). A benchmark tool: needs the venv of tests/oracle/setup_torch.sh.

The module is tests/oracle/comi_torch.py: the authors' default set-up built
from transformers + PEFT (encoder = the base cut to K layers, fully
trained; TKDR merge with gradients through the fine weights; one fusion
block + final norm, trained; the whole base as frozen decoder with PEFT
LoRA on q/k/v/o), loss = answer cross-entropy. One optimiser step = one
example (batch 1): forward, backward, global-norm clipping to 1.0,
torch.optim.AdamW (0.9, 0.999, 1e-8; weight decay 0.01 on tensors of 2+
dimensions only) with transformers' cosine schedule with warmup — the
Hugging Face Trainer's step.

    python bench/train_torch.py --model SmolLM2-135M-Instruct.Q4_1.gguf \\
        --data IDS.jsonl [--steps 5] [--threads 1] [--encoder-layers 8]
        [--merge-size 16] [--lora-r 128] [--lora-alpha 32] [--lora-dropout 0.05]
        [--lr 5e-5] [--warmup-ratio 0.05]

--model: a .gguf file (transformers dequantizes it to float32 with the gguf
package), a Hugging Face directory, or `random:smollm2-135m` (random weights
of SmolLM2-135M's shapes). --data rows carry context_ids / question_ids /
answer_ids (bench/train_vs_torch.sh makes them with `comi tokenize`), used
in file order. Like bench_train it runs steps + 2 optimiser steps and
counts the middle `steps` (the first is a warm-up; the last is where
bench_train writes its checkpoint), and prints one row: steps, tokens
(encoder: context + question; decoder: memories + question + answer), wall
and CPU seconds per step, tokens per wall and per CPU second, peak RSS.
"""
import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "oracle"))


def load_base(spec, torch, transformers):
    if spec.startswith("random:"):
        if spec != "random:smollm2-135m":
            sys.exit("train_torch: unknown random model %r (random:smollm2-135m)" % spec)
        cfg = transformers.LlamaConfig(
            vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5, rope_theta=100000.0,
            max_position_embeddings=8192, tie_word_embeddings=True, attn_implementation="eager")
        torch.manual_seed(0)
        return transformers.LlamaForCausalLM(cfg).float()
    if spec.endswith(".gguf"):
        return transformers.AutoModelForCausalLM.from_pretrained(
            os.path.dirname(os.path.abspath(spec)), gguf_file=os.path.basename(spec),
            dtype=torch.float32, attn_implementation="eager")
    return transformers.AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32,
                                                             attn_implementation="eager")


def main():
    ap = argparse.ArgumentParser(description="COMI training step in PyTorch (CPU)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encoder-layers", type=int, default=8)
    ap.add_argument("--fusion-layers", type=int, default=1)
    ap.add_argument("--merge-size", type=int, default=16)
    ap.add_argument("--lora-r", type=int, default=128)
    ap.add_argument("--lora-alpha", type=float, default=32.0)
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    if a.steps < 1:
        sys.exit("train_torch: --steps must be >= 1")

    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    import transformers
    from peft import LoraConfig
    from comi_torch import COMI, LORA_TARGETS

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import warnings
    warnings.filterwarnings("ignore", category=FutureWarning)
    rows = []
    with open(a.data) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                r = json.loads(line)
                if not all(k in r for k in ("context_ids", "question_ids", "answer_ids")):
                    sys.exit("train_torch: %s:%d: a row needs context_ids, question_ids, answer_ids" % (a.data, n))
                rows.append(r)
    total = a.steps + 2
    if not rows:
        sys.exit("train_torch: %s has no rows" % a.data)

    t_load = time.perf_counter()
    torch.manual_seed(a.seed)
    base = load_base(a.model, torch, transformers)
    lcfg = LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    model = COMI(base, lcfg, a.encoder_layers, a.fusion_layers, a.merge_size)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": a.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    sched = transformers.get_cosine_schedule_with_warmup(opt, int(-(-a.warmup_ratio * total // 1)), total)
    load_s = time.perf_counter() - t_load
    n_train = sum(p.numel() for p in params)

    tokens = 0
    t0 = c0 = None
    losses = []
    for s in range(total - 1):  # the last step is bench_train's checkpoint step: not run
        if s == 1:
            t0, c0 = time.perf_counter(), time.process_time()
        r = rows[s % len(rows)]
        opt.zero_grad(set_to_none=True)
        loss, n_mem = model.example_loss(r["context_ids"], r["question_ids"], r["answer_ids"])
        loss.backward()
        if a.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if s >= 1:
            tokens += len(r["context_ids"]) + 2 * len(r["question_ids"]) + n_mem + len(r["answer_ids"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch %s  load %.1f s  trainable %.1fM  losses %s" % (torch.__version__, load_s, n_train / 1e6,
                                                               " ".join("%.6f" % x for x in losses)),
          file=sys.stderr)
    print("steps %d  tokens %d  wall %.2f s/step  cpu %.2f s/step  %.1f tok/s  %.1f tok/cpu-s  peak RSS %.0f MiB"
          % (a.steps, tokens, wall / a.steps, cpu / a.steps, tokens / wall, tokens / cpu, rss))


if __name__ == "__main__":
    main()
