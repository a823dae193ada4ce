#!/usr/bin/env python3
"""tests/oracle/check_checkpoint.py — does PyTorch load what `comi train` writes?

A test tool, not part of the build or of `make test`: it needs the venv of
tests/oracle/setup_torch.sh (torch, transformers, peft, safetensors).

    sh tests/oracle/setup_torch.sh
    ~/.cache/comi/torch-venv/bin/python tests/oracle/check_checkpoint.py \
        [--comi build/comi] [--golden ../shared/golden] [--json OUT.json]

(or `make check-torch`). For each tiny model of golden/train/ (llama with
an untied lm_head; qwen2 with q/k/v biases and tied embeddings) it:

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
   tensors differ from the base's (LoRA B no longer zero, encoder changed);
3. runs the loaded module in float64 on each example and compares its loss
   with comi's loss for that row at the checkpoint (`comi train --init DIR
   --dump-grad G --data ROW`, no dropout), and every gradient of G with
   PyTorch autograd's (relative loss error <= 1e-5, gradient NMSE <= 1e-5:
   the tolerances of golden/train/).

Prints one line per check and exits 0 when all pass, 1 otherwise.
"""
import argparse
import json
import os
import importlib.metadata
import subprocess
import sys
import tempfile
import warnings

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
    # the LoRA settings as PEFT reads them from the checkpoint (PEFT warns
    # that it ignores the COMI keys beside them: said once, plainly)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        lcfg = LoraConfig.from_pretrained(ckpt)
    for x in w:
        if "Unexpected keyword arguments" in str(x.message):
            print("note  PEFT ignores adapter_config.json's COMI keys: " + str(x.message).split("]")[0].split("[")[-1])
    check(lcfg.r == g["lora_r"] and float(lcfg.lora_alpha) == float(g["lora_alpha"])
          and sorted(lcfg.target_modules) == sorted(LORA_TARGETS),
          "%s: PEFT reads adapter_config.json: r %s, lora_alpha %s, targets %s"
          % (name, lcfg.r, lcfg.lora_alpha, sorted(lcfg.target_modules)))
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    module = COMI(base, lcfg, g["encoder_layers"], g["fusion_layers"], g["merge_size"])
    msd = module.state_dict()
    state = safetensors.torch.load_file(os.path.join(ckpt, "model.safetensors"))
    if args.negative:
        # a broken checkpoint: the checks below must catch each fault
        k0 = "decoder.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
        state["decoder.base_model.model.model.layers.0.self_attn.q_proj.lora_C.default.weight"] = state.pop(k0)
        state["encoder.model.norm.weight"] = state["encoder.model.norm.weight"] * 1.01

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
    enc_key = "encoder.model.layers.0.self_attn.q_proj.weight"
    enc_moved = not torch.equal(state[enc_key], base_sd["model.layers.0.self_attn.q_proj.weight"])
    check(moved and enc_moved and len(lora_b) == 4 * module.decoder.base_model.model.config.num_hidden_layers,
          "%s: training moved the tensors (all %d LoRA B nonzero, encoder q_proj changed)" % (name, len(lora_b)))

    # forward and backward of the loaded module, float64, no dropout
    module.double().eval()
    params = dict(module.named_parameters())
    worst_loss, worst_grad = 0.0, 0.0
    for i, r in enumerate(rows):
        module.zero_grad(set_to_none=True)
        loss, n_mem = module.example_loss(r["context_ids"], r["question_ids"], r["answer_ids"])
        loss.backward()
        rel = abs(loss.item() - comi_loss[i]) / abs(loss.item())
        worst_loss = max(worst_loss, rel)
        check(rel <= LOSS_RTOL, "%s row %d: PyTorch loss %.9g, comi %.9g (relative %.2e, %d memories)"
              % (name, i, loss.item(), comi_loss[i], rel, n_mem))
        gfile = comi_grad[i]
        check(set(gfile) == set(trainable), "%s row %d: comi's gradient file has exactly the %d trainable tensors"
              % (name, i, len(trainable)))
        bad = []
        for k, gc in gfile.items():
            p = params.get(k)
            gt = p.grad if p is not None and p.grad is not None else torch.zeros_like(gc, dtype=torch.float64)
            den = float((gt * gt).sum())
            nmse = float(((gc.double() - gt) ** 2).sum()) / den if den > 0 else float((gc.double() ** 2).sum())
            worst_grad = max(worst_grad, nmse)
            if not nmse <= GRAD_NMSE:
                bad.append("%s %.2e" % (k, nmse))
        check(not bad, "%s row %d: %d gradients vs PyTorch autograd, worst NMSE %.2e%s"
              % (name, i, len(gfile), worst_grad, (": " + "; ".join(bad[:5])) if bad else ""))
    return {"model": name, "steps": args.steps, "checkpoint_tensors": len(state),
            "missing_keys": len(want_missing), "loss_rel_err_max": worst_loss, "grad_nmse_max": worst_grad}


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
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "peft": peft.__version__, "safetensors": safetensors.__version__, "numpy": np.__version__,
                "comi": run([args.comi, "--version"]).split()[-1]}
    print("versions: " + ", ".join("%s %s" % kv for kv in versions.items()))
    results = []
    for name in args.models.split(","):
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
