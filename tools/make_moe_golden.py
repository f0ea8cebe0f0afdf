#!/usr/bin/python3
"""Golden fixtures for mixq's mixture-of-experts forward pass.

What it does
------------
Builds four tiny Hugging Face style MoE checkpoints with random (seeded)
weights and, for a fixed 12-token prompt, computes the logits of every position
with an independent float64 PyTorch re-implementation of the Hugging Face
forward pass (Qwen3MoeForCausalLM / MixtralForCausalLM / Qwen2MoeForCausalLM).
No `transformers` or `safetensors` package is used; safetensors files are
written by hand.  Attention, RoPE, RMSNorm, the safetensors writer/reader and
the KV-cache decode come from tools/make_dense_golden.py (same conventions,
same code); this file adds the MoE blocks and the routing checks.

    tests/data/tiny-qwen3-moe/       qwen3_moe, BF16, untied, q/k norm, head_dim 32,
                                     8 experts top-2, norm_topk_prob true,
                                     mlp_only_layers [0] (layer 0 dense, layer 1 MoE)
    tests/data/tiny-mixtral/         mixtral, F32, 4 experts top-2 (w1/w2/w3),
                                     always renormalized, both layers MoE
    tests/data/tiny-qwen2-moe/       qwen2_moe, F32, q/k/v bias, 8 experts top-2,
                                     norm_topk_prob false, shared expert + sigmoid gate,
                                     both layers MoE
    tests/data/tiny-qwen3-moe-top1/  qwen3_moe, F32, 4 experts top-1, layer 0 dense;
                                     layer 1's router sends all 12 tokens to expert 2
                                     (experts 0, 1, 3 get no tokens)

Each folder gets:
    config.json        as transformers would write it (sorted keys, indent 2)
    model.safetensors  HF tensor names, tensors in name-sorted order
    golden.json        {"tokens": [...], "shape": [n_tokens, vocab], "reference": "...",
                        "moe": [{"layer": L, "selected_experts": [[e, ...] per token],
                                 "routing_weights": [[w, ...] per token],
                                 "min_router_gap": g}, ...]}
    logits.f32         float32 little-endian logits, row-major [n_tokens, vocab]

"selected_experts" lists, per token, the chosen experts in descending router
probability (torch.topk order); "routing_weights" are the matching weights that
multiply the expert outputs (after renormalization where the family does it).
"min_router_gap" is the smallest, over the layer's tokens, router-logit margin
between the k-th chosen expert and the best unchosen one: every fixture
asserts it is >= MIN_ROUTER_GAP so a float32 engine makes the same choices.

The reference computes in float64 from the *stored* (dtype-rounded) weights, so
the golden logits are exact for the checkpoint as written (up to the final
rounding to float32).  Self-checks: every model is also run one token at a time
with a KV cache and must match the full-sequence pass to 1e-10; the MoE block
is computed two ways (Hugging Face's loop over experts with index_add, and a
per-token loop over its chosen experts) that must agree to 1e-12; routing is
computed both with torch.topk and with an explicit sort by (-prob, expert id)
and must agree.

Everything is seeded and deterministic: reruns are byte-identical.

How to rerun
------------
    /usr/bin/python3 tools/make_moe_golden.py tests/data

(Debian's python, which has torch; the pyenv `python3` on PATH has no torch.)

Forward pass implemented (Hugging Face semantics)
-------------------------------------------------
    h = embed[tokens]
    per layer:
        attention exactly as tools/make_dense_golden.py (RMSNorm; q/k/v (+bias for
            qwen2_moe); qwen3_moe: per-head q_norm/k_norm before RoPE; rotate_half
            RoPE; causal GQA, scale 1/sqrt(head_dim)); h = h + o_proj(attn)
        x = RMSNorm(h) * post_attention_layernorm.w
        layer is MoE iff  layer not in mlp_only_layers and num_experts > 0 and
                          (layer + 1) % decoder_sparse_step == 0   (mixtral: always)
        dense:  mlp = down(silu(gate(x)) * up(x))         (intermediate_size)
        MoE:    logits = x Wg^T                            [T, n_experts]
                p = softmax(logits) over all experts      (float64 here, HF: float32)
                top-k of p (ties broken by the lower expert id; none occur)
                renormalize the k weights to sum 1 if mixtral, or if norm_topk_prob
                mlp = sum_k w_k * down_e(silu(gate_e(x)) * up_e(x))
                qwen2_moe: mlp += sigmoid(x . w_shared_gate) * shared_expert(x)
                mixtral expert e: gate = w1, up = w3, down = w2
        h = h + mlp
    logits = RMSNorm(h) lm_head^T
Positions are 0..n-1.  No rope scaling, no sliding window in any fixture.

Size note: with these shapes the folders are 333 KB (qwen3-moe, BF16), 547 KB
(mixtral), 752 KB (qwen2-moe) and 545 KB (qwen3-moe-top1); the expert tensors and
the F32 storage dominate.  BF16 everywhere would roughly halve the F32 ones.

Seeds: tiny-qwen2-moe uses seed 2053 because 2003 had a router margin of only
0.005 (a near-tie) in layer 0; the other seeds passed MIN_ROUTER_GAP as is.
"""

import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True   # no tools/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dense_golden as dense  # noqa: E402  (shared attention/rope/safetensors code)

torch.set_default_dtype(torch.float64)

N_TOKENS = dense.N_TOKENS  # 12
BOS, EOS = dense.BOS, dense.EOS
MIN_ROUTER_GAP = 0.02       # router-logit margin between the k-th and (k+1)-th expert

# ---------------------------------------------------------------------------
# model specs (keys shared with make_dense_golden: hidden, layers, heads, kv_heads,
# inter, vocab, head_dim, dtype, tie, eps, theta, max_pos, rope_scaling, qkv_bias,
# qk_norm, seed)

COMMON = dict(hidden=64, layers=2, heads=4, kv_heads=2, vocab=256, tie=False,
              max_pos=128, rope_scaling=None, theta=1000000.0)

SPECS = [
    dict(COMMON, name="tiny-qwen3-moe", model_type="qwen3_moe", arch="Qwen3MoeForCausalLM",
         family="qwen3_moe", head_dim=32, dtype="BF16", eps=1e-6,
         qkv_bias=False, qk_norm=True,
         inter=128, n_experts=8, top_k=2, moe_inter=32, shared_inter=0,
         norm_topk=True, sparse_step=1, mlp_only=[0], seed=2001),
    dict(COMMON, name="tiny-mixtral", model_type="mixtral", arch="MixtralForCausalLM",
         family="mixtral", head_dim=16, dtype="F32", eps=1e-5,
         qkv_bias=False, qk_norm=False,
         inter=48, n_experts=4, top_k=2, moe_inter=48, shared_inter=0,
         norm_topk=True, sparse_step=1, mlp_only=[], seed=2002),
    dict(COMMON, name="tiny-qwen2-moe", model_type="qwen2_moe", arch="Qwen2MoeForCausalLM",
         family="qwen2_moe", head_dim=16, dtype="F32", eps=1e-6,
         qkv_bias=True, qk_norm=False,
         inter=128, n_experts=8, top_k=2, moe_inter=32, shared_inter=64,
         norm_topk=False, sparse_step=1, mlp_only=[], seed=2053),
    dict(COMMON, name="tiny-qwen3-moe-top1", model_type="qwen3_moe", arch="Qwen3MoeForCausalLM",
         family="qwen3_moe", head_dim=32, dtype="F32", eps=1e-6,
         qkv_bias=False, qk_norm=True,
         inter=128, n_experts=4, top_k=1, moe_inter=32, shared_inter=0,
         norm_topk=True, sparse_step=1, mlp_only=[0], seed=2004,
         # force every token of layer 1 to expert 2 (see make_weights)
         force_expert=2, force_layer=1, force_channel=5),
]


def layer_is_moe(s, l):
    if s["family"] == "mixtral":
        return True
    return (l not in s["mlp_only"] and s["n_experts"] > 0
            and (l + 1) % s["sparse_step"] == 0)


# ---------------------------------------------------------------------------
# config.json (key sets as the transformers 4.5x config classes save them)

def make_config(s):
    c = {
        "architectures": [s["arch"]],
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": s["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": s["inter"],
        "max_position_embeddings": s["max_pos"],
        "model_type": s["model_type"],
        "num_attention_heads": s["heads"],
        "num_experts_per_tok": s["top_k"],
        "num_hidden_layers": s["layers"],
        "num_key_value_heads": s["kv_heads"],
        "output_router_logits": False,
        "rms_norm_eps": s["eps"],
        "rope_theta": s["theta"],
        "sliding_window": None,
        "tie_word_embeddings": s["tie"],
        "torch_dtype": dense.TORCH_DTYPE_NAME[s["dtype"]],
        "use_cache": True,
        "vocab_size": s["vocab"],
    }
    if s["family"] == "mixtral":
        # MixtralConfig keeps head_dim=None (saved as null); no rope_scaling key.
        c.update({"head_dim": None, "num_local_experts": s["n_experts"],
                  "router_aux_loss_coef": 0.02, "router_jitter_noise": 0.0})
        assert s["moe_inter"] == s["inter"] and s["hidden"] // s["heads"] == s["head_dim"]
    else:
        c.update({"decoder_sparse_step": s["sparse_step"],
                  "max_window_layers": s["layers"],
                  "mlp_only_layers": list(s["mlp_only"]),
                  "moe_intermediate_size": s["moe_inter"],
                  "norm_topk_prob": s["norm_topk"],
                  "num_experts": s["n_experts"],
                  "rope_scaling": s["rope_scaling"],
                  "router_aux_loss_coef": 0.001,
                  "use_sliding_window": False})
        if s["family"] == "qwen3_moe":
            c.update({"attention_bias": False, "head_dim": s["head_dim"]})
        else:  # qwen2_moe: no head_dim key (hidden / heads), q/k/v bias hard-wired
            c["shared_expert_intermediate_size"] = s["shared_inter"]
            assert s["hidden"] // s["heads"] == s["head_dim"]
    return c


# ---------------------------------------------------------------------------
# weights

def make_weights(s):
    """Returns a dict name -> stored tensor (in storage dtype)."""
    g = torch.Generator().manual_seed(s["seed"])
    H, I, V, D = s["hidden"], s["inter"], s["vocab"], s["head_dim"]
    E, F = s["n_experts"], s["moe_inter"]
    nq, nkv = s["heads"] * D, s["kv_heads"] * D

    def randn(*shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def norm_w(n):
        return 1.0 + randn(n, std=0.1)

    w = {}
    w["model.embed_tokens.weight"] = randn(V, H, std=0.5)
    for l in range(s["layers"]):
        p = "model.layers.%d." % l
        w[p + "input_layernorm.weight"] = norm_w(H)
        w[p + "self_attn.q_proj.weight"] = randn(nq, H, std=0.1)
        w[p + "self_attn.k_proj.weight"] = randn(nkv, H, std=0.1)
        w[p + "self_attn.v_proj.weight"] = randn(nkv, H, std=0.1)
        if s["qkv_bias"]:
            w[p + "self_attn.q_proj.bias"] = randn(nq, std=0.2)
            w[p + "self_attn.k_proj.bias"] = randn(nkv, std=0.2)
            w[p + "self_attn.v_proj.bias"] = randn(nkv, std=0.1)
        if s["qk_norm"]:
            w[p + "self_attn.q_norm.weight"] = norm_w(D)
            w[p + "self_attn.k_norm.weight"] = norm_w(D)
        w[p + "self_attn.o_proj.weight"] = randn(H, nq, std=0.1)
        w[p + "post_attention_layernorm.weight"] = norm_w(H)
        if not layer_is_moe(s, l):
            w[p + "mlp.gate_proj.weight"] = randn(I, H, std=0.1)
            w[p + "mlp.up_proj.weight"] = randn(I, H, std=0.1)
            w[p + "mlp.down_proj.weight"] = randn(H, I, std=0.1)
            continue
        if s["family"] == "mixtral":
            m = p + "block_sparse_moe."
            w[m + "gate.weight"] = randn(E, H, std=0.15)
            for e in range(E):
                w[m + "experts.%d.w1.weight" % e] = randn(F, H, std=0.1)   # gate
                w[m + "experts.%d.w3.weight" % e] = randn(F, H, std=0.1)   # up
                w[m + "experts.%d.w2.weight" % e] = randn(H, F, std=0.1)   # down
        else:
            m = p + "mlp."
            w[m + "gate.weight"] = randn(E, H, std=0.15)
            for e in range(E):
                w[m + "experts.%d.gate_proj.weight" % e] = randn(F, H, std=0.1)
                w[m + "experts.%d.up_proj.weight" % e] = randn(F, H, std=0.1)
                w[m + "experts.%d.down_proj.weight" % e] = randn(H, F, std=0.1)
            if s["shared_inter"]:
                S = s["shared_inter"]
                w[m + "shared_expert.gate_proj.weight"] = randn(S, H, std=0.1)
                w[m + "shared_expert.up_proj.weight"] = randn(S, H, std=0.1)
                w[m + "shared_expert.down_proj.weight"] = randn(H, S, std=0.1)
                w[m + "shared_expert_gate.weight"] = randn(1, H, std=0.15)
    w["model.norm.weight"] = norm_w(H)
    w["lm_head.weight"] = randn(V, H, std=0.15)

    if "force_expert" in s:
        # One channel of the residual stream is a large positive constant for every
        # token (like the "massive activations" of real LLMs): embed[:, c] = +3.
        # Attention/MLP add only ~±0.5 to it, so at layer force_layer it is still
        # clearly positive after RMSNorm, and a router row with a big positive
        # weight on that channel wins for every token.
        c, fe, fl = s["force_channel"], s["force_expert"], s["force_layer"]
        w["model.embed_tokens.weight"][:, c] = 3.0
        w["model.layers.%d.mlp.gate.weight" % fl][fe, c] = 2.0
    return {k: dense.round_to(v, s["dtype"]) for k, v in w.items()}


# ---------------------------------------------------------------------------
# float64 forward

def silu_mlp(x, wg, wu, wd):
    return (torch.nn.functional.silu(x @ wg.T) * (x @ wu.T)) @ wd.T


class MoeRef(dense.Ref):
    """Dense reference with the MLP replaced by the family's MoE block."""

    def __init__(self, s, weights):
        super().__init__(s, weights)
        self.trace = None   # when a dict: layer -> list of per-token routing records

    def expert_names(self, l, e):
        p = "model.layers.%d." % l
        if self.s["family"] == "mixtral":
            m = p + "block_sparse_moe.experts.%d." % e
            return m + "w1.weight", m + "w3.weight", m + "w2.weight"
        m = p + "mlp.experts.%d." % e
        return m + "gate_proj.weight", m + "up_proj.weight", m + "down_proj.weight"

    def expert(self, l, e, x):
        return silu_mlp(x, *[self.w[n] for n in self.expert_names(l, e)])

    def router(self, l, x):
        """Returns (logits [T,E], probs [T,E], top-k weights [T,k], top-k ids [T,k])."""
        s = self.s
        p = "model.layers.%d.%s" % (l, "block_sparse_moe." if s["family"] == "mixtral" else "mlp.")
        logits = x @ self.w[p + "gate.weight"].T
        probs = torch.softmax(logits, dim=-1)
        topw, topi = torch.topk(probs, s["top_k"], dim=-1)
        # independent selection: sort by (-prob, expert id); must agree with topk
        for t in range(x.shape[0]):
            order = sorted(range(s["n_experts"]), key=lambda e: (-probs[t, e].item(), e))
            assert order[:s["top_k"]] == topi[t].tolist(), (s["name"], l, t, order, topi[t])
        if s["family"] == "mixtral" or s["norm_topk"]:
            topw = topw / topw.sum(dim=-1, keepdim=True)
        return logits, probs, topw, topi

    def moe_hf_style(self, l, x, topw, topi):
        """HF: loop over experts, gather the tokens routed to each, index_add."""
        out = torch.zeros_like(x)
        for e in range(self.s["n_experts"]):
            tok, slot = torch.nonzero(topi == e, as_tuple=True)
            if len(tok) == 0:
                continue
            y = self.expert(l, e, x[tok]) * topw[tok, slot][:, None]
            out.index_add_(0, tok, y)
        return out

    def moe_per_token(self, l, x, topw, topi):
        """Per token: sum over its chosen experts (explicit loops)."""
        rows = []
        for t in range(x.shape[0]):
            acc = torch.zeros(x.shape[1])
            for j in range(self.s["top_k"]):
                acc = acc + topw[t, j] * self.expert(l, topi[t, j].item(), x[t:t + 1])[0]
            rows.append(acc)
        return torch.stack(rows)

    def shared(self, l, x):
        m = "model.layers.%d.mlp." % l
        y = silu_mlp(x, self.w[m + "shared_expert.gate_proj.weight"],
                     self.w[m + "shared_expert.up_proj.weight"],
                     self.w[m + "shared_expert.down_proj.weight"])
        return torch.sigmoid(x @ self.w[m + "shared_expert_gate.weight"].T) * y

    def mlp(self, l, x):
        s, p = self.s, "model.layers.%d." % l
        if not layer_is_moe(s, l):
            return silu_mlp(x, self.w[p + "mlp.gate_proj.weight"], self.w[p + "mlp.up_proj.weight"],
                            self.w[p + "mlp.down_proj.weight"])
        logits, probs, topw, topi = self.router(l, x)
        out = self.moe_hf_style(l, x, topw, topi)
        alt = self.moe_per_token(l, x, topw, topi)
        assert (out - alt).abs().max().item() < 1e-12, (s["name"], l)
        if s["shared_inter"]:
            out = out + self.shared(l, x)
        if self.trace is not None:
            rec = self.trace.setdefault(l, [])
            for t in range(x.shape[0]):
                srt = logits[t].sort(descending=True).values
                k = s["top_k"]
                gap = (srt[k - 1] - srt[k]).item() if k < s["n_experts"] else float("inf")
                rec.append(dict(experts=topi[t].tolist(), weights=topw[t].tolist(),
                                probs=probs[t].tolist(), logits=logits[t].tolist(), gap=gap))
        return out

    def post_attn(self, l, h, attn):
        s, p = self.s, "model.layers.%d." % l
        h = h + self.lin(attn.reshape(attn.shape[0], -1), p + "self_attn.o_proj")
        x = dense.rmsnorm(h, self.w[p + "post_attention_layernorm.weight"], s["eps"])
        return h + self.mlp(l, x)


# ---------------------------------------------------------------------------

def make_tokens(s):
    g = torch.Generator().manual_seed(s["seed"] + 500)
    rest = torch.randint(3, s["vocab"], (N_TOKENS - 1,), generator=g).tolist()
    return [BOS] + rest


def fmt_float(x):
    return repr(float(x))


def golden_json(tokens, spec, desc, trace):
    lines = ['{',
             '  "tokens": %s,' % json.dumps(tokens),
             '  "shape": %s,' % json.dumps([N_TOKENS, spec["vocab"]]),
             '  "reference": %s,' % json.dumps(desc),
             '  "moe": [']
    layers = sorted(trace)
    for i, l in enumerate(layers):
        recs = trace[l]
        lines.append('    {')
        lines.append('      "layer": %d,' % l)
        lines.append('      "selected_experts": [')
        lines.append(',\n'.join('        %s' % json.dumps(r["experts"]) for r in recs))
        lines.append('      ],')
        lines.append('      "routing_weights": [')
        lines.append(',\n'.join('        [%s]' % ", ".join("%.9f" % w for w in r["weights"])
                                for r in recs))
        lines.append('      ],')
        lines.append('      "min_router_gap": %.6f' % min(r["gap"] for r in recs))
        lines.append('    }' + (',' if i + 1 < len(layers) else ''))
    lines.append('  ]')
    lines.append('}')
    return "\n".join(lines) + "\n"


def build(spec, outdir):
    d = os.path.join(outdir, spec["name"])
    os.makedirs(d, exist_ok=True)
    cfg = make_config(spec)
    weights = make_weights(spec)
    tokens = make_tokens(spec)

    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    st_path = os.path.join(d, "model.safetensors")
    dense.write_safetensors(st_path, weights, spec["dtype"])

    # round-trip check: the reference uses exactly what the file holds
    back = dense.read_safetensors(st_path)
    assert sorted(back) == sorted(weights)
    for k in weights:
        assert torch.equal(back[k], weights[k].to(torch.float64)), k

    ref = MoeRef(spec, back)
    ref.trace = {}
    full = ref.forward_full(tokens)
    trace = ref.trace
    ref.trace = {}
    cached = ref.forward_cached(tokens)
    ctrace = ref.trace
    ref.trace = None
    kv_diff = (full - cached).abs().max().item()
    assert kv_diff < 1e-10, (spec["name"], kv_diff)
    assert torch.isfinite(full).all()

    # routing checks: same choices in both passes, no near-ties, expected layers
    moe_layers = [l for l in range(spec["layers"]) if layer_is_moe(spec, l)]
    assert sorted(trace) == moe_layers == sorted(ctrace), (trace.keys(), moe_layers)
    for l in moe_layers:
        assert [r["experts"] for r in trace[l]] == [r["experts"] for r in ctrace[l]], l
        gap = min(r["gap"] for r in trace[l])
        assert gap >= MIN_ROUTER_GAP, "%s layer %d: router margin %.4g < %g; pick another seed" % (
            spec["name"], l, gap, MIN_ROUTER_GAP)
        for r in trace[l]:
            ws = sum(r["weights"])
            if spec["family"] == "mixtral" or spec["norm_topk"]:
                assert abs(ws - 1) < 1e-12
            else:
                assert ws < 1 - 1e-3   # qwen2_moe: un-renormalized weights visibly < 1
    if "force_expert" in spec:
        fl, fe = spec["force_layer"], spec["force_expert"]
        got = [r["experts"] for r in trace[fl]]
        assert got == [[fe]] * N_TOKENS, got
        margin = min(r["logits"][fe] - max(v for e, v in enumerate(r["logits"]) if e != fe)
                     for r in trace[fl])
        assert margin > 1.0, margin

    logits32 = full.to(torch.float32).numpy().astype("<f4")
    with open(os.path.join(d, "logits.f32"), "wb") as f:
        f.write(logits32.tobytes())

    if spec["family"] == "mixtral":
        rt = "softmax over %d experts, top-%d, always renormalized" % (spec["n_experts"], spec["top_k"])
    else:
        rt = "softmax over %d experts, top-%d, norm_topk_prob=%s%s" % (
            spec["n_experts"], spec["top_k"], "true" if spec["norm_topk"] else "false",
            ", plus sigmoid-gated shared expert" if spec["shared_inter"] else "")
    desc = ("float64 torch, independent re-implementation of HF %s forward "
            "(%s weights upcast from the stored %s values; plain rope theta=%g; "
            "MoE layers %s: %s; positions 0..%d; full pass agrees with a "
            "one-token-at-a-time KV-cache decode to <1e-10)" % (
                spec["arch"], spec["dtype"], spec["dtype"], spec["theta"], moe_layers, rt,
                N_TOKENS - 1))
    with open(os.path.join(d, "golden.json"), "w") as f:
        f.write(golden_json(tokens, spec, desc, trace))

    # summary
    print("== %s (%s, %s, %d experts, top-%d)" % (spec["name"], spec["arch"], spec["dtype"],
                                                   spec["n_experts"], spec["top_k"]))
    print("   tokens: %s" % tokens)
    print("   layers: %s" % ", ".join("%d=%s" % (l, "moe" if layer_is_moe(spec, l) else "dense")
                                      for l in range(spec["layers"])))
    print("   logits: min %.4f max %.4f  mean row std %.4f  argmax per pos %s" % (
        full.min().item(), full.max().item(), full.std(dim=-1).mean().item(),
        full.argmax(-1).tolist()))
    for l in moe_layers:
        counts = [0] * spec["n_experts"]
        for r in trace[l]:
            for e in r["experts"]:
                counts[e] += 1
        unused = [e for e, c in enumerate(counts) if c == 0]
        print("   layer %d tokens per expert %s%s; min router gap %.4f; weight sums %.4f..%.4f" % (
            l, counts, ("  (no tokens: experts %s)" % unused) if unused else "",
            min(r["gap"] for r in trace[l]), min(sum(r["weights"]) for r in trace[l]),
            max(sum(r["weights"]) for r in trace[l])))
        print("           selected: %s" % [r["experts"] for r in trace[l]])
    if "force_expert" in spec:
        print("   forced: all %d tokens of layer %d route to expert %d (logit margin >= %.3f)" % (
            N_TOKENS, spec["force_layer"], spec["force_expert"], margin))
    print("   kv-cache vs full max |diff| = %.3e;  f32 rounding max |err| = %.3e" % (
        kv_diff, (torch.from_numpy(logits32.astype(np.float64)) - full).abs().max().item()))
    total = 0
    for fn in ("config.json", "model.safetensors", "golden.json", "logits.f32"):
        sz = os.path.getsize(os.path.join(d, fn))
        total += sz
        print("   %-18s %8d bytes" % (fn, sz))
    print("   %-18s %8d bytes" % ("total", total))


def main(argv):
    if len(argv) != 2:
        print("usage: /usr/bin/python3 tools/make_moe_golden.py OUTDIR   (e.g. tests/data)")
        return 2
    torch.manual_seed(0)
    for spec in SPECS:
        build(spec, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
