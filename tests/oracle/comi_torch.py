"""tests/oracle/comi_torch.py — the authors' COMI module in its default
training set-up, in PyTorch, for the checkpoint load check
(tests/oracle/check_checkpoint.py) and the training speed comparison
(bench/train_torch.py). A test tool: comi never imports it.

The module is built from Hugging Face pieces, so the parameter names are
the libraries' own, not ours (DESIGN.md "Training", golden/README.md
"train/"):

  encoder               the base CausalLM cut to its first K layers
                        (embed_tokens, layers 0..K-1, norm; its lm_head is
                        unused), fully trained
  memory_fusion_layer   the base CausalLM cut to fusion_layers layers
                        (use_transform_layer, num_mem_fusion_layers): its
                        final-norm hidden state over the memory sequence;
                        layers and norm trained, embed_tokens / lm_head unused
  semantic_alignment_layer  nn.Linear(encoder width, decoder width), only
                        without fusion when the widths differ
  decoder               the whole base, frozen, wrapped by PEFT's
                        get_peft_model with LoRA on q/k/v/o
  alpha_select, beta_select, alpha_merge, beta_merge   scalars (shape [1]),
                        fixed (requires_grad False)

so state_dict() names are encoder.model.layers.N..., memory_fusion_layer.
model..., decoder.base_model.model.model.layers.N.self_attn.q_proj.lora_A.
default.weight, ... The merge is TKDR as DESIGN.md "The merge, exactly"
states it (group sizes carry no gradient, the fine weights do).
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _cut(model, n_layers):
    """A deep copy of a CausalLM keeping its first n_layers layers."""
    m = copy.deepcopy(model)
    m.model.layers = m.model.layers[:n_layers]
    m.config.num_hidden_layers = n_layers
    if getattr(m.config, "layer_types", None):
        m.config.layer_types = m.config.layer_types[:n_layers]
    return m


def _freeze_unused(m, keep_embeddings):
    """The lm_head of the encoder / fusion block, and the fusion block's
    embed_tokens, get no gradient: marked frozen so that requires_grad names
    exactly the trained tensors (a tied lm_head is the embeddings: kept)."""
    emb = m.model.embed_tokens.weight
    if not keep_embeddings:
        emb.requires_grad_(False)
    if m.lm_head.weight is not emb:
        m.lm_head.weight.requires_grad_(False)


class COMI(nn.Module):
    def __init__(self, base, lora_config, encoder_layers, fusion_layers=1, merge_size=16):
        """base: a transformers CausalLM (consumed: it becomes the decoder);
        lora_config: a peft.LoraConfig."""
        super().__init__()
        from peft import get_peft_model

        self.merge_size = merge_size
        self.encoder = _cut(base, encoder_layers)
        self.memory_fusion_layer = _cut(base, fusion_layers) if fusion_layers > 0 else None
        d = base.config.hidden_size
        self.semantic_alignment_layer = None  # widths are equal: encoder and decoder share a base
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        _freeze_unused(self.encoder, keep_embeddings=True)
        if self.memory_fusion_layer is not None:
            for p in self.memory_fusion_layer.parameters():
                p.requires_grad_(True)
            _freeze_unused(self.memory_fusion_layer, keep_embeddings=False)
        self.decoder = get_peft_model(base, lora_config)  # freezes the base, LoRA trainable
        for name in ("alpha_select", "beta_select", "alpha_merge", "beta_merge"):
            self.register_parameter(name, nn.Parameter(torch.ones(1), requires_grad=False))
        self.d = d

    # ---- the merge ---------------------------------------------------------

    def group_sizes(self, H, q):
        """Coarse reallocation (no gradient): the group sizes in order, zeros dropped."""
        n, m = H.shape[0], self.merge_size
        with torch.no_grad():
            Hn = F.normalize(H, dim=-1, eps=1e-12)
            qn = F.normalize(q, dim=0, eps=1e-12)
            G = math.ceil(n / m)
            if G <= 1:
                return [n]
            rel = Hn @ qn
            reps, grel = [], []
            for g in range(G):
                r = rel[g * m:min((g + 1) * m, n)]
                j = int(torch.argmax(r))  # first on ties
                reps.append(g * m + j)
                grel.append(r[j])
            grel = torch.stack(grel)
            R = Hn[reps]
            C = R @ R.T
            C.fill_diagonal_(-math.inf)
            red = C.max(dim=1).values
            score = self.alpha_select.to(H.dtype) * grel - self.beta_select.to(H.dtype) * red
            p = torch.softmax(-score, dim=0)
            quota = (n * p).tolist()
            sizes = [math.floor(x) for x in quota]
            extra = n - sum(sizes)
            order = sorted(range(G), key=lambda g: (-(quota[g] - sizes[g]), g))
            for g in order[:extra]:
                sizes[g] += 1
            return [s for s in sizes if s > 0]

    def merge(self, H, q):
        Hn = F.normalize(H, dim=-1, eps=1e-12)
        qn = F.normalize(q, dim=0, eps=1e-12)
        mems, start = [], 0
        for k in self.group_sizes(H, q):
            Ht, Hnt = H[start:start + k], Hn[start:start + k]
            start += k
            rel = Hnt @ qn
            if k > 1:
                C = (Hnt @ Hnt.T).masked_fill(torch.eye(k, dtype=torch.bool), -math.inf)
                red = C.max(dim=1).values.clamp(min=0)
            else:
                red = torch.zeros_like(rel)
            w = torch.softmax(self.alpha_merge.to(H.dtype) * rel - self.beta_merge.to(H.dtype) * red, dim=0)
            mems.append(w @ Ht)
        return torch.stack(mems)

    # ---- one example ------------------------------------------------------

    def example_loss(self, ctx_ids, q_ids, ans_ids):
        """Mean cross-entropy over the answer ids, and the memory count."""
        n_ctx, n_q, n_ans = len(ctx_ids), len(q_ids), len(ans_ids)
        ids = torch.tensor([list(ctx_ids) + list(q_ids)])
        h = self.encoder.model(input_ids=ids).last_hidden_state[0]  # after the final norm
        mem = self.merge(h[:n_ctx], h[n_ctx:].mean(dim=0))
        if self.memory_fusion_layer is not None:
            mem = self.memory_fusion_layer.model(inputs_embeds=mem[None]).last_hidden_state[0]
        elif self.semantic_alignment_layer is not None:
            mem = self.semantic_alignment_layer(mem)
        lm = self.decoder.base_model.model  # the PEFT-wrapped CausalLM
        emb = lm.get_input_embeddings()
        ans = torch.tensor(list(ans_ids))
        x = torch.cat([mem, emb(torch.tensor(list(q_ids))), emb(ans)])
        hid = lm.model(inputs_embeds=x[None]).last_hidden_state[0]
        first = mem.shape[0] + n_q - 1  # the last question position predicts the first answer id
        logits = lm.lm_head(hid[first:first + n_ans])
        return F.cross_entropy(logits, ans), mem.shape[0]


def is_frozen_key(key):
    """Keys of the module that a comi train checkpoint leaves to the base:
    the decoder's own weights, and the lm_head / embed_tokens that the
    encoder and fusion block never use."""
    if key.startswith("decoder."):
        return ".lora_A." not in key and ".lora_B." not in key
    return key in ("encoder.lm_head.weight", "memory_fusion_layer.lm_head.weight",
                   "memory_fusion_layer.model.embed_tokens.weight")
