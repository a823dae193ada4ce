#!/usr/bin/env python3
"""tests/oracle/check_checkpoint.py — does PyTorch load what `comi train` writes?

A test tool, not part of the build or of `make test`: it needs the venv of
tests/oracle/setup_torch.sh (torch, transformers, peft, safetensors).

    sh tests/oracle/setup_torch.sh
    ~/.cache/comi/torch-venv/bin/python tests/oracle/check_checkpoint.py \
        [--comi build/comi] [--golden ../shared/golden] [--json OUT.json]
    ~/.cache/comi/torch-venv/bin/python tests/oracle/check_checkpoint.py \
        --checkpoint DIR --base MODEL.gguf --data HELDOUT.jsonl [--rows N]

(or `make check-torch`, `make check-torch-smollm2`). For each tiny model of
golden/train/ (llama with an untied lm_head; qwen2 with q/k/v biases and
tied embeddings) it:

1. trains with `comi train` for a few steps (the golden's settings: encoder
   layers, merge size, fusion block, LoRA r / alpha; LoRA dropout 0.05,
   lr 1e-3) on the two golden examples, from the base's Hugging Face
   directory, so the checkpoint's tensors have moved away from the base;
2. builds the authors' COMI module in PyTorch (tests/oracle/comi_torch.py:
   transformers CausalLMs for encoder / fusion / decoder, the decoder
   wrapped by PEFT's get_peft_model with the LoraConfig that PEFT reads
   from the checkpoint's adapter_config.json) and calls
   `load_state_dict(state, strict=False)` on DIR/model.safetensors;
   asserts: no unexpected key; the missing keys are exactly the frozen base
   tensors (decoder base weights, and the lm_head / embed_tokens the encoder
   and fusion block never use); every checkpoint tensor has the module's
   shape and, after the load, the module holds it bit for bit; the trained
   tensors differ from the base's (every LoRA B nonzero, every encoder and
   fusion tensor changed);
3. runs the loaded module in float64 on each example and compares its loss
   with comi's loss for that row at the checkpoint (`comi train --init DIR
   --dump-grad G --data ROW`, no dropout), and every gradient of G with
   PyTorch autograd's (relative loss error <= 1e-5, gradient NMSE <= 1e-5:
   the tolerances of golden/train/).

With --checkpoint DIR --base MODEL (a real `comi train` checkpoint, e.g.
scripts/train_smollm2.sh's on SmolLM2-135M-Instruct; MODEL a .gguf file,
which transformers dequantizes to float32 with the gguf package, or a
Hugging Face directory) there is no training: the module's settings come
from DIR/adapter_config.json and the context cut from DIR/trainer_state.json,
and steps 2-3 run on the first --rows rows of --data (COMI JSONL, e.g. the
recipe's heldout.jsonl). Besides, it checks that comi's loss of each text
row equals its loss from the ids of `comi tokenize` (the ids PyTorch gets),
that transformers' float32 dequantization of the base equals comi's bit for
bit (on the encoder and fusion tensors, as `comi train --steps 1 --lr 0`
writes them), that the decoder's frozen tensors are the base's after the
load, and it prints PyTorch's own float32 loss and gradients against its
float64 ones: the error any float32 implementation makes, the scale that
the tolerances (--loss-rtol, --grad-nmse; default the goldens' 1e-5) must
clear with room.

Prints one line per check and exits 0 when all pass, 1 otherwise.
"""
import argparse
import json
import os
import importlib.metadata
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loading bar
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import peft  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from comi_torch import COMI, LORA_TARGETS, is_frozen_key  # noqa: E402

LOSS_RTOL = 1e-5
GRAD_NMSE = 1e-5

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))
    return r.stdout


def write_rows(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps({"context_ids": r["context_ids"], "question_ids": r["question_ids"],
                                "answer_ids": r["answer_ids"]}) + "\n")


def read_lora_config(name, ckpt, r, alpha):
    """The LoRA settings as PEFT reads them from the checkpoint's
    adapter_config.json (PEFT warns that it ignores the COMI keys beside
    them: said once, plainly), checked against r / alpha."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        lcfg = LoraConfig.from_pretrained(ckpt)
    for x in w:
        if "Unexpected keyword arguments" in str(x.message):
            print("note  PEFT ignores adapter_config.json's COMI keys: " + str(x.message).split("]")[0].split("[")[-1])
    check(lcfg.r == r and float(lcfg.lora_alpha) == float(alpha)
          and sorted(lcfg.target_modules) == sorted(LORA_TARGETS),
          "%s: PEFT reads adapter_config.json: r %s, lora_alpha %s, targets %s"
          % (name, lcfg.r, lcfg.lora_alpha, sorted(lcfg.target_modules)))
    return lcfg


def base_key(key):
    """The base model's tensor that a trained encoder / fusion tensor starts
    from (the fusion block's layers are initialised from base layers 0..),
    or None (LoRA, MIG scalars)."""
    for prefix in ("encoder.model.", "memory_fusion_layer.model."):
        if key.startswith(prefix):
            return "model." + key[len(prefix):]
    return None


def check_load(name, module, state, base_sd):
    """load_state_dict(state, strict=False) on the module, with the checks
    of step 2 of the docstring; returns the trainable parameter names."""
    msd = module.state_dict()
    unexpected0 = sorted(k for k in state if k not in msd)
    bad_shape = [k for k in state if k in msd and tuple(state[k].shape) != tuple(msd[k].shape)]
    check(not bad_shape, "%s: all %d checkpoint tensors have the module's shapes%s"
          % (name, len(state), (": " + ", ".join(bad_shape[:5])) if bad_shape else ""))
    res = module.load_state_dict(state, strict=False)
    check(not res.unexpected_keys and not unexpected0,
          "%s: load_state_dict(strict=False): no unexpected keys%s"
          % (name, (": " + ", ".join(res.unexpected_keys[:5])) if res.unexpected_keys else ""))
    want_missing = sorted(k for k in msd if is_frozen_key(k))
    got_missing = sorted(res.missing_keys)
    extra = sorted(set(got_missing) - set(want_missing))
    check(got_missing == want_missing,
          "%s: missing keys = the %d frozen base tensors (decoder base weights, unused lm_head/"
          "embed_tokens)%s" % (name, len(want_missing), (": unexpectedly missing " + ", ".join(extra[:5]))
                               if extra else ""))
    trainable = sorted(k for k, p in module.named_parameters() if p.requires_grad)
    check(set(trainable) <= set(state),
          "%s: every trainable tensor of the module (%d) is in the checkpoint" % (name, len(trainable)))
    msd = module.state_dict()
    differ = [k for k in state if k in msd and not torch.equal(msd[k], state[k].to(msd[k].dtype))]
    check(not differ and all(state[k].dtype == torch.float32 for k in state),
          "%s: the module holds every checkpoint tensor bit for bit (float32)%s"
          % (name, (": " + ", ".join(differ[:5])) if differ else ""))
    lora_b = [k for k in state if ".lora_B." in k]
    moved = all(float(state[k].abs().max()) > 0 for k in lora_b)
    from_base = [k for k in state if base_key(k) in base_sd]
    same = [k for k in from_base if torch.equal(state[k], base_sd[base_key(k)])]
    check(moved and not same and len(lora_b) == 4 * module.decoder.base_model.model.config.num_hidden_layers,
          "%s: training moved the tensors (all %d LoRA B nonzero, all %d encoder / fusion tensors differ "
          "from the base's)%s" % (name, len(lora_b), len(from_base), (": unchanged " + ", ".join(same[:5]))
                                  if same else ""))
    return want_missing, trainable


def torch_loss_grad(module, r):
    """The module's loss for row r (eval mode: no dropout), the memory
    count, and autograd's gradient of every trainable tensor."""
    module.zero_grad(set_to_none=True)
    loss, n_mem = module.example_loss(r["context_ids"], r["question_ids"], r["answer_ids"])
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in module.named_parameters() if p.grad is not None}
    return loss.item(), n_mem, grads


def nmse(got, want):
    """Normalised squared error of got against want (plain squared error
    when want is zero)."""
    got, want = got.double(), want.double()
    den = float((want * want).sum())
    err = float(((got - want) ** 2).sum())
    return err / den if den > 0 else err


def compare_row(name, i, module, r, comi_loss, gfile, trainable, loss_rtol, grad_nmse, ref=None):
    """comi's loss and gradients (gfile) for row r against the module's;
    returns (relative loss error, worst gradient NMSE)."""
    loss, n_mem, grads = ref if ref is not None else torch_loss_grad(module, r)
    rel = abs(loss - comi_loss) / abs(loss)
    check(rel <= loss_rtol, "%s row %d: PyTorch loss %.9g, comi %.9g (relative %.2e, %d memories)"
          % (name, i, loss, comi_loss, rel, n_mem))
    check(set(gfile) == set(trainable), "%s row %d: comi's gradient file has exactly the %d trainable tensors"
          % (name, i, len(trainable)))
    bad, worst = [], 0.0
    for k, gc in gfile.items():
        e = nmse(gc, grads.get(k, torch.zeros_like(gc, dtype=torch.float64)))
        worst = max(worst, e)
        if not e <= grad_nmse:
            bad.append("%s %.2e" % (k, e))
    check(not bad, "%s row %d: %d gradients vs PyTorch autograd, worst NMSE %.2e%s"
          % (name, i, len(gfile), worst, (": " + "; ".join(bad[:5])) if bad else ""))
    return rel, worst


def check_model(args, name, work):
    gdir = os.path.join(args.golden, "train", name)
    with open(os.path.join(gdir, "golden.json")) as f:
        g = json.load(f)
    base_dir = os.path.join(args.golden, "forward", "models", g["base"])
    rows = g["examples"]
    data = os.path.join(work, "rows.jsonl")
    write_rows(data, rows)
    ckpt = os.path.join(work, "ckpt")
    module_opts = ["--encoder-layers", str(g["encoder_layers"]), "--merge-size", str(g["merge_size"]),
                   "--fusion-layers", str(g["fusion_layers"]), "--lora-r", str(g["lora_r"]),
                   "--lora-alpha", repr(g["lora_alpha"]), "--threads", "1"]
    run([args.comi, "train", "--model", base_dir, "--data", data, "--out", ckpt, "--steps", str(args.steps),
         "--lora-dropout", "0.05", "--lr", "1e-3", "--schedule", "constant", "--seed", "11", "--quiet"]
        + module_opts)
    comi_loss, comi_grad = [], []
    for i, r in enumerate(rows):
        rp = os.path.join(work, "row%d.jsonl" % i)
        write_rows(rp, [r])
        gp = os.path.join(work, "grad%d.safetensors" % i)
        out = run([args.comi, "train", "--model", base_dir, "--init", ckpt, "--data", rp, "--dump-grad", gp,
                   "--quiet"] + module_opts)
        comi_loss.append(float(out.strip().splitlines()[-1]))
        comi_grad.append(safetensors.torch.load_file(gp))

    print("== %s: %d steps of comi train, checkpoint %s" % (name, args.steps, ckpt))
    lcfg = read_lora_config(name, ckpt, g["lora_r"], g["lora_alpha"])
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    module = COMI(base, lcfg, g["encoder_layers"], g["fusion_layers"], g["merge_size"])
    state = safetensors.torch.load_file(os.path.join(ckpt, "model.safetensors"))
    if args.negative:
        # a broken checkpoint: the checks below must catch each fault
        k0 = "decoder.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
        state["decoder.base_model.model.model.layers.0.self_attn.q_proj.lora_C.default.weight"] = state.pop(k0)
        state["encoder.model.norm.weight"] = state["encoder.model.norm.weight"] * 1.01

    want_missing, trainable = check_load(name, module, state, base_sd)

    # forward and backward of the loaded module, float64, no dropout
    module.double().eval()
    worst_loss, worst_grad = 0.0, 0.0
    for i, r in enumerate(rows):
        rel, g_err = compare_row(name, i, module, r, comi_loss[i], comi_grad[i], trainable, LOSS_RTOL, GRAD_NMSE)
        worst_loss, worst_grad = max(worst_loss, rel), max(worst_grad, g_err)
    return {"model": name, "steps": args.steps, "checkpoint_tensors": len(state),
            "missing_keys": len(want_missing), "loss_rel_err_max": worst_loss, "grad_nmse_max": worst_grad}


def tokenize(args, text, eos=False):
    """Token ids of text as `comi train` tokenizes a COMI JSONL row (no
    special tokens; EOS appended for the answer), by `comi tokenize`."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as f:
        f.write(text)
        f.flush()
        out = run([args.comi, "tokenize", "--model", args.base, "--no-bos", "--file", f.name]
                  + (["--eos"] if eos else []))
    return [int(x) for x in out.split()]


def comi_dump(args, opts, rows_path, grad_path, init=None):
    """comi's loss (mean over the rows, no dropout) and its gradient file."""
    out = run([args.comi, "train", "--model", args.base, "--data", rows_path, "--dump-grad", grad_path, "--quiet"]
              + (["--init", init] if init else []) + opts)
    return float(out.strip().splitlines()[-1]), safetensors.torch.load_file(grad_path)


def check_real(args, work):
    """The checks of the docstring on a real checkpoint (--checkpoint DIR
    --base MODEL): no training, the rows are the first --rows of --data."""
    ckpt, name = args.checkpoint, os.path.basename(os.path.normpath(args.checkpoint))
    with open(os.path.join(ckpt, "adapter_config.json")) as f:
        acfg = json.load(f)
    ctx = args.context_tokens
    if ctx is None:
        try:
            with open(os.path.join(ckpt, "trainer_state.json")) as f:
                ctx = int(json.load(f)["settings"]["context_tokens"])
        except (OSError, KeyError, ValueError):
            ctx = 0
    K, F, M = int(acfg["encoder_layers"]), int(acfg["fusion_layers"]), int(acfg["merge_size"])
    opts = ["--encoder-layers", str(K), "--merge-size", str(M), "--fusion-layers", str(F),
            "--lora-r", str(acfg["r"]), "--lora-alpha", repr(float(acfg["lora_alpha"])), "--threads", "1"]
    print("== %s: checkpoint %s, base %s (encoder %d layers, %d fusion, merge %d, LoRA r %s alpha %s, "
          "context <= %d tokens)" % (name, ckpt, args.base, K, F, M, acfg["r"], acfg["lora_alpha"], ctx))
    with open(args.data) as f:
        text_rows = [json.loads(line) for line in f if line.strip()][:args.rows]
    if len(text_rows) < args.rows:
        sys.exit("check_checkpoint: %s has fewer than %d rows" % (args.data, args.rows))

    # comi: each row as text (what training read) and as the ids of `comi
    # tokenize` (what PyTorch gets): the two losses must be equal
    t0 = time.perf_counter()
    rows, comi_loss, comi_grad = [], [], []
    for i, tr in enumerate(text_rows):
        ans = tr["answer"][0] if isinstance(tr["answer"], list) else tr["answer"]
        ids = tokenize(args, tr["input"])
        r = {"context_ids": ids[:ctx] if ctx > 0 else ids, "question_ids": tokenize(args, tr["prompt"]),
             "answer_ids": tokenize(args, ans, eos=True)}
        rows.append(r)
        tp, rp = os.path.join(work, "text%d.jsonl" % i), os.path.join(work, "ids%d.jsonl" % i)
        with open(tp, "w") as f:
            f.write(json.dumps(tr) + "\n")
        write_rows(rp, [r])
        lt, _ = comi_dump(args, opts + ["--context-tokens", str(ctx)], tp, os.path.join(work, "gt.safetensors"), ckpt)
        li, gi = comi_dump(args, opts, rp, os.path.join(work, "g%d.safetensors" % i), ckpt)
        check(lt == li, "%s row %d (%s): comi's loss from the text row %.9g = from comi tokenize's ids %.9g "
              "(%d context, %d question, %d answer tokens)" % (name, i, tr.get("id", "?"), lt, li,
                                                               len(r["context_ids"]), len(r["question_ids"]),
                                                               len(r["answer_ids"])))
        comi_loss.append(li)
        comi_grad.append(gi)
    # comi's own float32 weights of the base: one step at learning rate 0
    # writes the encoder and fusion tensors as comi dequantized them
    lr0 = os.path.join(work, "lr0")
    run([args.comi, "train", "--model", args.base, "--data", os.path.join(work, "ids0.jsonl"), "--out", lr0,
         "--steps", "1", "--lr", "0", "--quiet"] + opts)
    comi_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    lcfg = read_lora_config(name, ckpt, acfg["r"], acfg["lora_alpha"])
    base_path = os.path.abspath(args.base)
    if args.base.endswith(".gguf"):
        base = AutoModelForCausalLM.from_pretrained(os.path.dirname(base_path), gguf_file=os.path.basename(base_path),
                                                    dtype=torch.float32, attn_implementation="eager")
    else:
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, attn_implementation="eager")
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    start = safetensors.torch.load_file(os.path.join(lr0, "model.safetensors"))
    pairs = [(k, base_key(k)) for k in start if base_key(k) in base_sd]
    diff = [k for k, b in pairs if not torch.equal(start[k], base_sd[b])]
    worst = max([float((start[k] - base_sd[b]).abs().max()) for k, b in pairs] or [0.0])
    check(pairs and not diff, "%s: transformers' float32 dequantization of the base = comi's, bit for bit, on the "
          "%d encoder / fusion tensors (%d differ, max |diff| %.3g)" % (name, len(pairs), len(diff), worst))

    module = COMI(base, lcfg, K, F, M)
    state = safetensors.torch.load_file(os.path.join(ckpt, "model.safetensors"))
    want_missing, trainable = check_load(name, module, state, base_sd)
    dec = {k: v for k, v in module.decoder.base_model.model.state_dict().items() if ".lora_" not in k}
    frozen_diff = [k for k, v in dec.items() if not torch.equal(v, base_sd[k.replace(".base_layer", "")])]
    check(not frozen_diff, "%s: the decoder's %d frozen tensors are the base's after the load%s"
          % (name, len(dec), (": " + ", ".join(frozen_diff[:5])) if frozen_diff else ""))

    # the loaded module, float32 (the noise of float32 itself) and float64
    # (the reference), no dropout
    module.eval()
    ref32 = [torch_loss_grad(module, r) for r in rows]
    module.double()
    worst_loss = worst_grad = f32_loss = f32_grad = 0.0
    torch_loss = []
    for i, r in enumerate(rows):
        ref = torch_loss_grad(module, r)
        torch_loss.append(ref[0])
        rel, g_err = compare_row(name, i, module, r, comi_loss[i], comi_grad[i], trainable,
                                 args.loss_rtol, args.grad_nmse, ref)
        worst_loss, worst_grad = max(worst_loss, rel), max(worst_grad, g_err)
        l32, _, g32 = ref32[i]
        r32 = abs(l32 - ref[0]) / abs(ref[0])
        n32 = max(nmse(g32.get(k, torch.zeros_like(g)), g) for k, g in ref[2].items())
        f32_loss, f32_grad = max(f32_loss, r32), max(f32_grad, n32)
        print("info  %s row %d: PyTorch float32 vs float64: loss %.9g (relative %.2e), worst gradient NMSE %.2e"
              % (name, i, l32, r32, n32))
    torch_s = time.perf_counter() - t0
    print("info  %s: comi %.0f s, PyTorch %.0f s (wall, 1 thread each)" % (name, comi_s, torch_s))
    return {"model": name, "checkpoint": ckpt, "base": args.base, "rows": args.rows, "context_tokens": ctx,
            "checkpoint_tensors": len(state), "missing_keys": len(want_missing), "comi_loss": comi_loss,
            "torch_loss_float64": torch_loss,
            "loss_rel_err_max": worst_loss, "grad_nmse_max": worst_grad,
            "torch_float32_loss_rel_err_max": f32_loss, "torch_float32_grad_nmse_max": f32_grad,
            "comi_wall_s": comi_s, "torch_wall_s": torch_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comi", default=os.path.join(ROOT, "build", "comi"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "..", "shared", "golden"))
    ap.add_argument("--models", default="tiny-llama-spm,tiny-qwen2-bpe")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json", help="write the figures and versions here")
    ap.add_argument("--negative", action="store_true",
                    help="self-test: rename one LoRA key and scale the encoder norm of the loaded state; "
                         "exit 0 only when the key, missing-key and loss checks catch it")
    ap.add_argument("--checkpoint", metavar="DIR",
                    help="check this `comi train` checkpoint instead of training tiny ones (needs --base)")
    ap.add_argument("--base", metavar="MODEL", help="its base model: .gguf file or Hugging Face directory")
    ap.add_argument("--data", metavar="F.jsonl", help="COMI JSONL rows for the loss check (with --checkpoint)")
    ap.add_argument("--rows", type=int, default=1, help="how many rows of --data (default 1)")
    ap.add_argument("--context-tokens", type=int,
                    help="context tokens kept per row (default: the checkpoint's trainer_state.json)")
    ap.add_argument("--loss-rtol", type=float, default=LOSS_RTOL,
                    help="relative loss tolerance with --checkpoint (default %(default)g)")
    ap.add_argument("--grad-nmse", type=float, default=GRAD_NMSE,
                    help="gradient NMSE tolerance with --checkpoint (default %(default)g)")
    args = ap.parse_args()
    if args.checkpoint and not (args.base and args.data):
        ap.error("--checkpoint needs --base and --data")
    if args.checkpoint and args.negative:
        ap.error("--negative works on the tiny models only")
    if args.rows < 1:
        ap.error("--rows must be >= 1")
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    # PEFT on a GGUF base: "base_model_name_or_path was renamed" (harmless)
    warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*")
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "peft": peft.__version__, "safetensors": safetensors.__version__, "numpy": np.__version__,
                "comi": run([args.comi, "--version"]).split()[-1]}
    print("versions: " + ", ".join("%s %s" % kv for kv in versions.items()))
    results = []
    if args.checkpoint:
        with tempfile.TemporaryDirectory(prefix="comi_torch_check_") as work:
            results.append(check_real(args, work))
    for name in [] if args.checkpoint else args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="comi_torch_check_") as work:
            results.append(check_model(args, name, work))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions, "results": results, "failures": failures}, f, indent=1)
            f.write("\n")
    if args.negative:
        kinds = ["no unexpected keys", "missing keys =", "every trainable tensor", "PyTorch loss"]
        caught = [k for k in kinds if all(any(k in f and m in f for f in failures) for m in args.models.split(","))]
        ok = caught == kinds
        print("negative self-test: %s (caught: %s)" % ("passed" if ok else "FAILED", ", ".join(caught) or "nothing"))
        return 0 if ok else 1
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
