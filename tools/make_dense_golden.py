#!/usr/bin/python3
"""Golden fixtures for mixq's dense-transformer forward pass.

What it does
------------
Builds four tiny Hugging Face style checkpoints with random (seeded) weights
and, for a fixed 12-token prompt, computes the logits of every position with an
independent float64 PyTorch re-implementation of the Hugging Face forward pass
(LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM).  No `transformers`
or `safetensors` package is used; safetensors files are written by hand.

    tests/data/tiny-llama3/      llama, F32,  untied, llama3 rope scaling
    tests/data/tiny-qwen2/       qwen2, BF16, tied,   q/k/v bias
    tests/data/tiny-qwen3/       qwen3, F16,  untied, q_norm/k_norm, head_dim 32
    tests/data/tiny-qwen3-yarn/  qwen3, F32,  untied, yarn rope scaling

Each folder gets:
    config.json        as transformers would write it (sorted keys, indent 2)
    model.safetensors  HF tensor names, tensors in name-sorted order
    golden.json        {"tokens": [...], "shape": [n_tokens, vocab], "reference": "..."}
    logits.f32         float32 little-endian logits, row-major [n_tokens, vocab]

The reference computes in float64 from the *stored* (dtype-rounded) weights, so
the golden logits are exact for the checkpoint as written (up to the final
rounding to float32).  As a self-check, every model is also run one token at a
time with a KV cache; the result must match the full-sequence pass to 1e-10.

Everything is seeded and deterministic: reruns are byte-identical.

How to rerun
------------
    /usr/bin/python3 tools/make_dense_golden.py tests/data

(Debian's python, which has torch; the pyenv `python3` on PATH has no torch.)

Forward pass implemented (Hugging Face semantics)
-------------------------------------------------
    h = embed[tokens]
    per layer:
        x  = RMSNorm(h) = h * rsqrt(mean(h^2) + eps) * w
        q, k, v = x Wq^T (+bq), x Wk^T (+bk), x Wv^T (+bv)        (split into heads)
        qwen3: q = RMSNorm_headdim(q) * q_norm.w, k likewise      (before RoPE)
        RoPE, HF rotate_half convention:
            x*cos + rotate_half(x)*sin, rotate_half([x1, x2]) = [-x2, x1],
            cos/sin = cos/sin(pos * inv_freq) duplicated to head_dim
            (times the rope "attention_factor" for yarn, as HF does)
        causal GQA attention, scale 1/sqrt(head_dim), query head h uses
            kv head h // (n_heads / n_kv_heads)  (HF repeat_kv)
        h = h + o_proj(attn)
        h = h + down(silu(gate(RMSNorm(h))) * up(RMSNorm(h)))
    logits = RMSNorm(h) lm_head^T   (lm_head = embed when tied)
Positions are 0..n-1.

RoPE scaling formulas
---------------------
llama3: transformers' `_compute_llama3_parameters` (unchanged since 4.43):
    wavelen = 2*pi/inv_freq;  wavelen < orig/high_freq_factor  -> unchanged
    wavelen > orig/low_freq_factor -> inv_freq/factor; otherwise smooth blend
    with s = (orig/wavelen - low)/(high - low): (1-s)*inv_freq/factor + s*inv_freq.
    attention_factor 1.

yarn: transformers' `_compute_yarn_parameters` as in the 4.5x releases that
have the `truncate` option (~v4.56, the same code is still in main):
    dim   = config.head_dim (not hidden/heads!) * partial_rotary_factor(1)
    beta_fast = 32, beta_slow = 1, truncate = True
    correction range computed with rope_scaling["original_max_position_embeddings"]
        (32 here; older releases, e.g. 4.45-4.50, used config.max_position_embeddings
        and hidden_size // num_attention_heads instead, which gives a different
        ramp for this config)
    find_correction_dim(r) = dim*ln(orig/(2*pi*r)) / (2*ln(base))
    low = max(floor(fcd(beta_fast)), 0), high = min(ceil(fcd(beta_slow)), dim-1)
    ramp(i) = clamp((i - low)/(high - low), 0, 1) for i in 0..dim/2-1
    extrapolation_factor = 1 - ramp
    inv_freq = inv_freq_interp*(1-extrapolation_factor) + inv_freq_extrap*extrapolation_factor
        with inv_freq_extrap = base^(-2i/dim), inv_freq_interp = inv_freq_extrap/factor
    attention_factor = 0.1*ln(factor) + 1  (get_mscale; no mscale/mscale_all_dim)
    cos and sin are both multiplied by attention_factor.
HF computes inv_freq in float32; this reference computes it in float64 (the
difference is far below any sane test tolerance, ~1e-7 relative).
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

N_TOKENS = 12
BOS, EOS = 1, 2

# ---------------------------------------------------------------------------
# model specs

COMMON = dict(hidden=64, layers=2, heads=4, kv_heads=2, inter=128, vocab=256)

SPECS = [
    dict(COMMON, name="tiny-llama3", model_type="llama", arch="LlamaForCausalLM",
         head_dim=16, dtype="F32", tie=False, eps=1e-5, theta=10000.0, max_pos=256,
         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
         qkv_bias=False, qk_norm=False, seed=1001),
    dict(COMMON, name="tiny-qwen2", model_type="qwen2", arch="Qwen2ForCausalLM",
         head_dim=16, dtype="BF16", tie=True, eps=1e-6, theta=1000000.0, max_pos=128,
         rope_scaling=None, qkv_bias=True, qk_norm=False, seed=1002),
    dict(COMMON, name="tiny-qwen3", model_type="qwen3", arch="Qwen3ForCausalLM",
         head_dim=32, dtype="F16", tie=False, eps=1e-6, theta=1000000.0, max_pos=128,
         rope_scaling=None, qkv_bias=False, qk_norm=True, seed=1003),
    dict(COMMON, name="tiny-qwen3-yarn", model_type="qwen3", arch="Qwen3ForCausalLM",
         head_dim=32, dtype="F32", tie=False, eps=1e-6, theta=1000000.0, max_pos=128,
         rope_scaling={"rope_type": "yarn", "factor": 4.0,
                       "original_max_position_embeddings": 32},
         qkv_bias=False, qk_norm=True, seed=1004),
]

TORCH_DTYPE_NAME = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


# ---------------------------------------------------------------------------
# config.json

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
        "num_hidden_layers": s["layers"],
        "num_key_value_heads": s["kv_heads"],
        "rms_norm_eps": s["eps"],
        "rope_scaling": s["rope_scaling"],
        "rope_theta": s["theta"],
        "tie_word_embeddings": s["tie"],
        "torch_dtype": TORCH_DTYPE_NAME[s["dtype"]],
        "use_cache": True,
        "vocab_size": s["vocab"],
    }
    if s["model_type"] == "llama":
        c.update({"attention_bias": False, "head_dim": s["head_dim"], "mlp_bias": False,
                  "pretraining_tp": 1})
    elif s["model_type"] == "qwen2":
        # Qwen2Config stores sliding_window=None when use_sliding_window is false.
        c.update({"max_window_layers": s["layers"], "sliding_window": None,
                  "use_sliding_window": False})
    elif s["model_type"] == "qwen3":
        c.update({"attention_bias": False, "head_dim": s["head_dim"],
                  "max_window_layers": s["layers"], "sliding_window": None,
                  "use_sliding_window": False})
    assert s["hidden"] // s["heads"] == s["head_dim"] or "head_dim" in c
    return c


# ---------------------------------------------------------------------------
# weights

def round_to(t32, dtype):
    """Round a float32 tensor to the storage dtype; returns the stored tensor."""
    if dtype == "F32":
        return t32.to(torch.float32)
    if dtype == "F16":
        return t32.to(torch.float16)
    if dtype == "BF16":
        return t32.to(torch.bfloat16)  # round-to-nearest-even
    raise ValueError(dtype)


def make_weights(s):
    """Returns an ordered dict name -> stored tensor (in storage dtype)."""
    g = torch.Generator().manual_seed(s["seed"])
    H, I, V, D = s["hidden"], s["inter"], s["vocab"], s["head_dim"]
    nq, nkv = s["heads"] * D, s["kv_heads"] * D

    def randn(*shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def norm_w(n):
        return 1.0 + randn(n, std=0.1)

    w = {}
    w["model.embed_tokens.weight"] = randn(V, H, std=0.1 if s["tie"] else 0.5)
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
        w[p + "mlp.gate_proj.weight"] = randn(I, H, std=0.1)
        w[p + "mlp.up_proj.weight"] = randn(I, H, std=0.1)
        w[p + "mlp.down_proj.weight"] = randn(H, I, std=0.1)
    w["model.norm.weight"] = norm_w(H)
    if not s["tie"]:
        w["lm_head.weight"] = randn(V, H, std=0.15)
    return {k: round_to(v, s["dtype"]) for k, v in w.items()}


# ---------------------------------------------------------------------------
# safetensors writer (by hand)

def tensor_bytes(t, dtype):
    if dtype == "F32":
        return t.numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for n in names:
        b = tensor_bytes(tensors[n], dtype)
        header[n] = {"dtype": dtype, "shape": list(tensors[n].shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Minimal reader used to verify what was written round-trips."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[base + a:base + b]
        if v["dtype"] == "F32":
            arr = np.frombuffer(raw, "<f4").astype(np.float64)
        elif v["dtype"] == "F16":
            arr = np.frombuffer(raw, "<f2").astype(np.float64)
        else:
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    assert base + max(v["data_offsets"][1] for k, v in hdr.items() if k != "__metadata__") == len(data)
    return out


# ---------------------------------------------------------------------------
# RoPE

def rope_params(s):
    """Returns (inv_freq float64 [head_dim/2], attention_factor, info str)."""
    D, base = s["head_dim"], s["theta"]
    i = torch.arange(0, D, 2, dtype=torch.float64)
    inv_freq = 1.0 / (base ** (i / D))
    rs = s["rope_scaling"]
    if rs is None:
        return inv_freq, 1.0, "default rope"
    if rs["rope_type"] == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wavelen = 2 * math.pi / inv_freq
        out = torch.empty_like(inv_freq)
        bands = []
        for j in range(len(inv_freq)):
            wl, f = wavelen[j].item(), inv_freq[j].item()
            if wl < high_wl:
                out[j] = f
                bands.append("high")
            elif wl > low_wl:
                out[j] = f / factor
                bands.append("low")
            else:
                sm = (old / wl - lo) / (hi - lo)
                out[j] = (1 - sm) * f / factor + sm * f
                bands.append("mid")
        info = "llama3 bands (wavelen<%g: high/unchanged, >%g: low/÷%g, else mid/smoothed):\n" % (
            high_wl, low_wl, factor)
        for j in range(len(inv_freq)):
            info += "      i=%d wavelen=%10.3f %-4s inv_freq %.6e -> %.6e\n" % (
                j, wavelen[j].item(), bands[j], inv_freq[j].item(), out[j].item())
        counts = {b: bands.count(b) for b in ("high", "mid", "low")}
        assert all(counts[b] > 0 for b in counts), counts
        info += "      band counts: %s" % counts
        return out, 1.0, info
    if rs["rope_type"] == "yarn":
        factor = rs["factor"]
        orig = rs.get("original_max_position_embeddings") or s["max_pos"]
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1
        attn_factor = rs.get("attention_factor")
        if attn_factor is None:
            attn_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0

        def fcd(rot):
            return (D * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        low = max(math.floor(fcd(beta_fast)), 0)
        high = min(math.ceil(fcd(beta_slow)), D - 1)
        hi_ = high + 0.001 if low == high else high
        ramp = torch.clamp((torch.arange(D // 2, dtype=torch.float64) - low) / (hi_ - low), 0, 1)
        extrap = 1 - ramp
        pos_freqs = base ** (i / D)
        inv_extrap = 1.0 / pos_freqs
        inv_interp = 1.0 / (factor * pos_freqs)
        out = inv_interp * (1 - extrap) + inv_extrap * extrap
        info = ("yarn: orig=%d factor=%g correction range low=%d high=%d "
                "attention_factor=%.12f\n      extrapolation factor per i: %s\n"
                "      inv_freq: %s" % (
                    orig, factor, low, high, attn_factor,
                    [round(x, 4) for x in extrap.tolist()],
                    ["%.4e" % x for x in out.tolist()]))
        return out, attn_factor, info
    raise ValueError(rs)


def rope_cos_sin(inv_freq, attn_factor, positions):
    freqs = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)          # [T, head_dim]
    return emb.cos() * attn_factor, emb.sin() * attn_factor


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat([-x[..., d:], x[..., :d]], dim=-1)


def apply_rope(x, cos, sin):
    # x: [T, heads, D]; cos/sin: [T, D]
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


# ---------------------------------------------------------------------------
# float64 forward

def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Ref:
    def __init__(self, s, weights):
        self.s = s
        self.w = {k: v.to(torch.float64) for k, v in weights.items()}
        self.inv_freq, self.attn_factor, self.rope_info = rope_params(s)
        self.lm_head = self.w["model.embed_tokens.weight"] if s["tie"] else self.w["lm_head.weight"]

    def lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        return y if b is None else y + b

    def qkv(self, l, h, positions):
        s, p = self.s, "model.layers.%d." % l
        D = s["head_dim"]
        x = rmsnorm(h, self.w[p + "input_layernorm.weight"], s["eps"])
        T = x.shape[0]
        q = self.lin(x, p + "self_attn.q_proj").view(T, s["heads"], D)
        k = self.lin(x, p + "self_attn.k_proj").view(T, s["kv_heads"], D)
        v = self.lin(x, p + "self_attn.v_proj").view(T, s["kv_heads"], D)
        if s["qk_norm"]:
            q = rmsnorm(q, self.w[p + "self_attn.q_norm.weight"], s["eps"])
            k = rmsnorm(k, self.w[p + "self_attn.k_norm.weight"], s["eps"])
        cos, sin = rope_cos_sin(self.inv_freq, self.attn_factor, positions)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def post_attn(self, l, h, attn):
        s, p = self.s, "model.layers.%d." % l
        h = h + self.lin(attn.reshape(attn.shape[0], -1), p + "self_attn.o_proj")
        x = rmsnorm(h, self.w[p + "post_attention_layernorm.weight"], s["eps"])
        g = self.lin(x, p + "mlp.gate_proj")
        u = self.lin(x, p + "mlp.up_proj")
        return h + self.lin(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")

    def head(self, h):
        return rmsnorm(h, self.w["model.norm.weight"], self.s["eps"]) @ self.lm_head.T

    def forward_full(self, tokens):
        """Whole sequence at once with an explicit causal mask."""
        s = self.s
        T = len(tokens)
        rep = s["heads"] // s["kv_heads"]
        pos = torch.arange(T)
        h = self.w["model.embed_tokens.weight"][torch.tensor(tokens)]
        mask = torch.full((T, T), float("-inf")).triu(1)   # 0 on/below diagonal
        for l in range(s["layers"]):
            q, k, v = self.qkv(l, h, pos)
            k = k.repeat_interleave(rep, dim=1)               # HF repeat_kv
            v = v.repeat_interleave(rep, dim=1)
            scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(s["head_dim"]) + mask
            probs = torch.softmax(scores, dim=-1)
            attn = torch.einsum("hts,shd->thd", probs, v)
            h = self.post_attn(l, h, attn)
        return self.head(h)

    def forward_cached(self, tokens):
        """One token at a time with a KV cache, explicit per-head loops, no mask."""
        s = self.s
        rep = s["heads"] // s["kv_heads"]
        cache = [([], []) for _ in range(s["layers"])]
        rows = []
        for t, tok in enumerate(tokens):
            h = self.w["model.embed_tokens.weight"][tok:tok + 1]
            for l in range(s["layers"]):
                q, k, v = self.qkv(l, h, torch.tensor([t]))
                cache[l][0].append(k[0])
                cache[l][1].append(v[0])
                K = torch.stack(cache[l][0])                  # [t+1, kv, D]
                Vv = torch.stack(cache[l][1])
                out = torch.empty(1, s["heads"], s["head_dim"])
                for hh in range(s["heads"]):
                    kvh = hh // rep
                    sc = (K[:, kvh, :] @ q[0, hh]) / math.sqrt(s["head_dim"])
                    pr = torch.exp(sc - sc.max())
                    pr = pr / pr.sum()
                    out[0, hh] = pr @ Vv[:, kvh, :]
                h = self.post_attn(l, h, out)
            rows.append(self.head(h)[0])
        return torch.stack(rows)


# ---------------------------------------------------------------------------

def make_tokens(s):
    g = torch.Generator().manual_seed(s["seed"] + 500)
    rest = torch.randint(3, s["vocab"], (N_TOKENS - 1,), generator=g).tolist()
    return [BOS] + rest


def build(spec, outdir):
    d = os.path.join(outdir, spec["name"])
    os.makedirs(d, exist_ok=True)
    cfg = make_config(spec)
    weights = make_weights(spec)
    tokens = make_tokens(spec)

    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    st_path = os.path.join(d, "model.safetensors")
    write_safetensors(st_path, weights, spec["dtype"])

    # round-trip check: the reference uses exactly what the file holds
    back = read_safetensors(st_path)
    assert sorted(back) == sorted(weights)
    for k in weights:
        assert torch.equal(back[k], weights[k].to(torch.float64)), k

    ref = Ref(spec, back)
    full = ref.forward_full(tokens)
    cached = ref.forward_cached(tokens)
    kv_diff = (full - cached).abs().max().item()
    assert kv_diff < 1e-10, (spec["name"], kv_diff)
    assert torch.isfinite(full).all()

    logits32 = full.to(torch.float32).numpy().astype("<f4")
    with open(os.path.join(d, "logits.f32"), "wb") as f:
        f.write(logits32.tobytes())

    desc = ("float64 torch, independent re-implementation of HF %s forward "
            "(%s weights upcast from the stored %s values; %s; positions 0..%d; "
            "full pass agrees with a one-token-at-a-time KV-cache decode to <1e-10)" % (
                spec["arch"], spec["dtype"], spec["dtype"],
                "rope_scaling=" + spec["rope_scaling"]["rope_type"] if spec["rope_scaling"]
                else "plain rope theta=%g" % spec["theta"],
                N_TOKENS - 1))
    with open(os.path.join(d, "golden.json"), "w") as f:
        f.write('{\n  "tokens": %s,\n  "shape": %s,\n  "reference": %s\n}\n' % (
            json.dumps(tokens), json.dumps([N_TOKENS, spec["vocab"]]), json.dumps(desc)))

    # summary
    std_per_row = full.std(dim=-1)
    print("== %s (%s, %s, %s)" % (spec["name"], spec["arch"], spec["dtype"],
                                  "tied" if spec["tie"] else "untied"))
    print("   tokens: %s" % tokens)
    print("   rope: %s" % ref.rope_info)
    print("   logits: min %.4f max %.4f  mean row std %.4f  argmax per pos %s" % (
        full.min().item(), full.max().item(), std_per_row.mean().item(),
        full.argmax(-1).tolist()))
    print("   kv-cache vs full max |diff| = %.3e;  f32 rounding max |err| = %.3e" % (
        kv_diff, (torch.from_numpy(logits32.astype(np.float64)) - full).abs().max().item()))
    for fn in ("config.json", "model.safetensors", "golden.json", "logits.f32"):
        print("   %-18s %8d bytes" % (fn, os.path.getsize(os.path.join(d, fn))))


def main(argv):
    if len(argv) != 2:
        print("usage: /usr/bin/python3 tools/make_dense_golden.py OUTDIR   (e.g. tests/data)")
        return 2
    torch.manual_seed(0)
    for spec in SPECS:
        build(spec, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
