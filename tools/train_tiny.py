#!/usr/bin/python3
"""Train mixq's shipped demo model, models/tiny-en, from scratch.

What it does
------------
1. Reads the World English Bible (public domain) from Debian's
   `sword-text-web` package (SWORD zText module engWEB2015eb: zlib-compressed
   OSIS XML, one block per book), strips the markup (Strong's numbers,
   footnotes, headings, the appended glossary) and turns it into plain UTF-8
   text, one paragraph or poetry line per line.  Curly quotes become ASCII
   quotes so that prompts typed on a keyboard look like the training text.
   The last ~2% (cut at a line start: the end of Revelation) is held out and
   written to heldout.txt for perplexity tests; the rest is the training text.
2. Trains a byte-level BPE tokenizer on the training text (the same scheme as
   GPT-2: bytes mapped to printable unicode, the GPT-2 pre-tokenizer regex,
   merges learned by pair frequency), 4096 tokens = 256 bytes + 3838 merges +
   <|bos|> + <|eos|>.  Writes tokenizer.json (Hugging Face `tokenizers` format:
   BPE model, ByteLevel pre-tokenizer and decoder, a TemplateProcessing
   post-processor that prepends <|bos|>) and tokenizer_config.json.
3. Trains a Llama-architecture model (RMSNorm, rotate-half RoPE, SwiGLU, GQA,
   tied embeddings) with every Linear's input size a multiple of 128, on
   windows of <|bos|> + 255 text tokens that start at line starts, with
   AdamW and a cosine schedule, fixed seeds.
4. Writes a Hugging Face checkpoint: config.json, generation_config.json,
   model.safetensors (bf16, written by hand), tokenizer files, heldout.txt,
   README.md, and reference.json: for fixed prompts, the token ids, the
   last-position logits and a 32-token greedy continuation computed in float64
   from the bf16-rounded weights (the C engine is tested against it).

How to run
----------
    apt-get install sword-text-web python3-regex python3-torch
    apt-get install libopenblas0-pthread   # optional, ~20x faster training
    nice -n 10 /usr/bin/python3 tools/train_tiny.py --out models/tiny-en

(Debian's python, which has torch; the `python3` on PATH may not.)  About 22
minutes of wall time on a busy 2-core machine, one thread.  `--quick` does a
one-minute smoke run of every stage into /tmp/tiny-en-quick.  `--save-ckpt F` keeps the float32 weights and merges;
`--from-ckpt F` re-exports from them without training.

Debian's torch reaches BLAS through the libblas.so.3 alternative, which by
default is the netlib reference BLAS (a few GFLOPS).  If OpenBLAS is installed
the script re-executes itself with OpenBLAS first in LD_LIBRARY_PATH (and
OPENBLAS_NUM_THREADS = --threads); the system alternative is left as it is.

No `tokenizers`, `transformers` or `safetensors` package is used.
"""

import argparse
import collections
import heapq
import html
import json
import math
import os
import re
import struct
import sys
import time
import zlib

OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


def use_openblas(threads):
    """Re-execute with OpenBLAS first in LD_LIBRARY_PATH (see the module docstring).
    OpenBLAS reads its thread count from the environment when torch loads it."""
    if (os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3"))
            and OPENBLAS_DIR not in os.environ.get("LD_LIBRARY_PATH", "").split(":")):
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def parse_args():
    ap = argparse.ArgumentParser(description="Train mixq's demo model models/tiny-en (see the docstring).")
    ap.add_argument("--out", default="models/tiny-en")
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and OpenBLAS threads (1: OpenBLAS's spinning threads do badly on a busy machine)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny budget, output in /tmp/tiny-en-quick")
    ap.add_argument("--save-ckpt", help="save float32 weights + merges here (torch.save)")
    ap.add_argument("--from-ckpt", help="skip training: export from a --save-ckpt file")
    return ap.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()
    use_openblas(ARGS.threads)

try:
    import regex  # Debian: python3-regex (\p{L}, \p{N} as the HF pre-tokenizer uses them)
except ImportError:
    sys.exit("train_tiny.py: needs the `regex` module: apt-get install python3-regex")
import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- data

PACKAGE = "sword-text-web"
MODULE_DIR = "/usr/share/sword/modules/texts/ztext/engWEB2015eb"


def read_web_osis():
    """The whole module as one OSIS string, books in canonical order."""
    parts = []
    for testament in ("ot", "nt"):
        bzs_path = os.path.join(MODULE_DIR, testament + ".bzs")
        bzz_path = os.path.join(MODULE_DIR, testament + ".bzz")
        if not (os.path.exists(bzs_path) and os.path.exists(bzz_path)):
            sys.exit("train_tiny.py: %s not found: the training text is the World English Bible "
                     "from the Debian package %s (apt-get install %s)" % (bzz_path, PACKAGE, PACKAGE))
        bzs = open(bzs_path, "rb").read()
        bzz = open(bzz_path, "rb").read()
        # .bzs: per block (uint32 LE) offset, compressed size, uncompressed size
        for b in range(len(bzs) // 12):
            off, size, usize = struct.unpack_from("<III", bzs, 12 * b)
            block = zlib.decompress(bzz[off:off + size])
            if len(block) != usize:
                sys.exit("train_tiny.py: %s block %d: bad size" % (bzz_path, b))
            parts.append(block.decode("utf-8"))
    return "".join(parts)


def osis_to_text(osis):
    # drop the glossary appended after Revelation
    g = osis.find('type="glossary"')
    if g >= 0:
        osis = osis[:osis.rfind("<", 0, g)]
    v = osis
    # footnotes and closing quote tags: a marker, so that words they separate stay separate
    v = re.sub(r"<note\b.*?</note>", "\x00", v, flags=re.S)
    v = v.replace("</q>", "\x00")
    v = re.sub(r"<(title|speaker|catchWord)\b.*?</\1>", "", v, flags=re.S)
    # paragraph, poetry line, line group and chapter starts: new line
    v = re.sub(r"<(div|l|lg|chapter)\b[^>]*\bsID=[^>]*/>", "\n", v)
    v = re.sub(r"<lb\b[^>]*/>", "\n", v)
    v = re.sub(r"<[^>]*>", "", v)
    v = html.unescape(v)
    v = v.translate({0x2018: "'", 0x2019: "'", 0x201C: '"', 0x201D: '"'})
    v = re.sub(r"(?<=[\w.,;:!?\"'])\x00+(?=\w)", " ", v)
    v = v.replace("\x00", "")
    v = re.sub(r"[ \t\r\f\v\u00a0]+", " ", v)
    v = re.sub(r" *\n[ \n]*", "\n", v).strip() + "\n"
    return v


def split_heldout(text, frac=0.02, max_bytes=200_000):
    cut = text.rfind("\n", 0, int(len(text) * (1 - frac))) + 1
    while len(text[cut:].encode("utf-8")) >= max_bytes:
        cut = text.find("\n", cut) + 1
    return text[:cut], text[cut:]

# ---------------------------------------------------------------- tokenizer

# The pre-tokenizer of GPT-2 and of Hugging Face's ByteLevel(use_regex=true).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PRETOK = regex.compile(GPT2_PATTERN)
BOS, EOS = "<|bos|>", "<|eos|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {c: b for b, c in B2U.items()}


def train_bpe(text, n_merges):
    """Byte-level BPE: returns merges [(a, b)] of token strings, most frequent first.

    Pair counts are kept incrementally (pair -> count, pair -> words holding it)
    with a lazy max-heap; ties go to the pair of smallest (left id, right id),
    ids being byte values for bytes and 256 + merge index for merged tokens."""
    words = collections.Counter(PRETOK.findall(text))
    syms = []   # per distinct word: list of token ids
    freq = []
    for w, c in sorted(words.items()):
        syms.append(list(w.encode("utf-8")))
        freq.append(c)
    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for i, s in enumerate(syms):
        for p in zip(s, s[1:]):
            pair_count[p] += freq[i]
            where[p].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    tok = [B2U[b] for b in range(256)]
    merges = []
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -negc or -negc <= 0:
            continue  # stale entry
        if -negc < 2:
            break
        new = 256 + len(merges)
        merges.append(p)
        tok.append(tok[p[0]] + tok[p[1]])
        changed = set()
        for i in sorted(where[p]):
            s = syms[i]
            out = []
            j = 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == p[0] and s[j + 1] == p[1]:
                    out.append(new)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            for q in zip(s, s[1:]):
                pair_count[q] -= freq[i]
                changed.add(q)
            for q in zip(out, out[1:]):
                pair_count[q] += freq[i]
                where[q].add(i)
                changed.add(q)
            syms[i] = out
        del where[p]
        for q in changed:
            c = pair_count[q]
            if c <= 0:
                pair_count.pop(q, None)
                where.pop(q, None)
            else:
                heapq.heappush(heap, (-c, q))
    return [(tok[a], tok[b]) for a, b in merges]


class Tokenizer:
    """Encodes exactly as Hugging Face's BPE + ByteLevel(use_regex, no prefix space)
    + TemplateProcessing(<|bos|> $A) does for text without special tokens."""

    def __init__(self, merges):
        self.merges = merges
        self.vocab = {B2U[b]: b for b in range(256)}
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        self.bos_id = len(self.vocab)
        self.eos_id = self.bos_id + 1
        self.vocab[BOS] = self.bos_id
        self.vocab[EOS] = self.eos_id
        self.itos = {i: t for t, i in self.vocab.items()}
        self.rank = {m: i for i, m in enumerate(merges)}
        self.cache = {}

    def bpe(self, word):
        """GPT-2's bpe(): repeatedly merge every occurrence of the lowest-ranked pair."""
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda j: self.rank.get((parts[j], parts[j + 1]), 1 << 30))
            pair = (parts[best], parts[best + 1])
            if pair not in self.rank:
                break
            out = []
            j = 0
            while j < len(parts):
                if j + 1 < len(parts) and (parts[j], parts[j + 1]) == pair:
                    out.append(parts[j] + parts[j + 1])
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            parts = out
        ids = [self.vocab[t] for t in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text, add_bos=True):
        ids = [self.bos_id] if add_bos else []
        for w in PRETOK.findall(text):
            ids.extend(self.bpe("".join(B2U[b] for b in w.encode("utf-8"))))
        return ids

    def decode(self, ids, skip_special=True):
        out = bytearray()
        for i in ids:
            t = self.itos[int(i)]
            if t in (BOS, EOS):
                if not skip_special:
                    out += t.encode()
                continue
            out += bytes(U2B[c] for c in t)
        return out.decode("utf-8", errors="replace")

    def tokenizer_json(self):
        special = lambda i, s: {"id": i, "content": s, "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": True}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [special(self.bos_id, BOS), special(self.eos_id, EOS)],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": BOS, "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {BOS: {"id": BOS, "ids": [self.bos_id], "tokens": [BOS]}},
            },
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": self.vocab,
                "merges": ["%s %s" % m for m in self.merges],
            },
        }

    def tokenizer_config(self, ctx):
        added = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                          "single_word": False, "special": True}
                 for i, s in ((self.bos_id, BOS), (self.eos_id, EOS))}
        return {
            "added_tokens_decoder": added,
            "bos_token": BOS,
            "clean_up_tokenization_spaces": False,
            "eos_token": EOS,
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": ctx,
            "tokenizer_class": "PreTrainedTokenizerFast",
        }

# ---------------------------------------------------------------- model


def make_config(vocab, bos_id, eos_id, ctx):
    # key set and order as transformers 4.46 writes LlamaConfig (sorted keys)
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "head_dim": 32,
        "hidden_act": "silu",
        "hidden_size": 256,
        "initializer_range": 0.02,
        "intermediate_size": 768,
        "max_position_embeddings": ctx,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 8,
        "num_hidden_layers": 6,
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
        "use_cache": True,
        "vocab_size": vocab,
    }


def init_params(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    D = cfg["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    std = cfg["initializer_range"]
    rstd = std / math.sqrt(2 * L)  # residual-stream writers (o_proj, down_proj), GPT-2 style
    p = {}
    normal = lambda shape, s: (torch.randn(*shape, generator=g) * s)
    p["model.embed_tokens.weight"] = normal((cfg["vocab_size"], H), std)
    for l in range(L):
        pre = "model.layers.%d." % l
        p[pre + "input_layernorm.weight"] = torch.ones(H)
        p[pre + "self_attn.q_proj.weight"] = normal((nh * D, H), std)
        p[pre + "self_attn.k_proj.weight"] = normal((nkv * D, H), std)
        p[pre + "self_attn.v_proj.weight"] = normal((nkv * D, H), std)
        p[pre + "self_attn.o_proj.weight"] = normal((H, nh * D), rstd)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(H)
        p[pre + "mlp.gate_proj.weight"] = normal((I, H), std)
        p[pre + "mlp.up_proj.weight"] = normal((I, H), std)
        p[pre + "mlp.down_proj.weight"] = normal((H, I), rstd)
    p["model.norm.weight"] = torch.ones(H)
    return p


def rms_norm(x, w, eps):
    # HF LlamaRMSNorm: in float32 (here: the compute dtype), then times the weight
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(cfg, T, dtype):
    D = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], -1)  # [T, D], HF duplicates the frequencies
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def forward(p, cfg, ids, rope=None):
    """ids: [B, T] -> logits [B, T, vocab] (LlamaForCausalLM, positions 0..T-1)."""
    Bsz, T = ids.shape
    H, D = cfg["hidden_size"], cfg["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    eps = cfg["rms_norm_eps"]
    emb = p["model.embed_tokens.weight"]
    dtype = emb.dtype
    cos, sin = rope if rope is not None else rope_tables(cfg, T, dtype)
    cos, sin = cos[:T], sin[:T]
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    h = emb[ids]
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % l
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = (x @ p[pre + "self_attn.q_proj.weight"].t()).view(Bsz, T, nh, D).transpose(1, 2)
        k = (x @ p[pre + "self_attn.k_proj.weight"].t()).view(Bsz, T, nkv, D).transpose(1, 2)
        v = (x @ p[pre + "self_attn.v_proj.weight"].t()).view(Bsz, T, nkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv  # HF repeat_kv: query head j uses kv head j // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.softmax((q @ k.transpose(-1, -2)) * (D ** -0.5) + mask, dim=-1)
        a = (att @ v).transpose(1, 2).reshape(Bsz, T, nh * D)
        h = h + a @ p[pre + "self_attn.o_proj.weight"].t()
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        g = x @ p[pre + "mlp.gate_proj.weight"].t()
        u = x @ p[pre + "mlp.up_proj.weight"].t()
        h = h + (F.silu(g) * u) @ p[pre + "mlp.down_proj.weight"].t()
    h = rms_norm(h, p["model.norm.weight"], eps)
    head = p["lm_head.weight"] if "lm_head.weight" in p else emb
    return h @ head.t()

# ---------------------------------------------------------------- safetensors


def write_safetensors_bf16(path, tensors):
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for n in names:
        t = tensors[n].detach().to(torch.bfloat16).contiguous()
        b = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[n] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Independent reader (numpy only): name -> float32 tensor."""
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "BF16", info
        a, b = info["data_offsets"]
        u = np.frombuffer(data[base + a:base + b], dtype="<u2").astype(np.uint32) << 16
        out[name] = torch.from_numpy(u.view(np.float32).reshape(info["shape"]).copy())
    return out

# ---------------------------------------------------------------- training


def batches_eval(tokens, bos_id, ctx):
    """Held-out windows: <|bos|> + (ctx-1) tokens, non-overlapping, loss on every position."""
    n = ctx - 1
    xs, ys = [], []
    for s in range(0, len(tokens) - 1, n):
        chunk = tokens[s:s + n]
        if len(chunk) < 16:
            break
        xs.append([bos_id] + chunk[:-1])
        ys.append(chunk)
    return xs, ys


@torch.no_grad()
def eval_loss(p, cfg, xs, ys):
    tot, cnt = 0.0, 0
    for x, y in zip(xs, ys):  # one window at a time: lengths may differ
        lg = forward(p, cfg, torch.tensor([x]))
        tot += F.cross_entropy(lg[0].float(), torch.tensor(y), reduction="sum").item()
        cnt += len(y)
    return tot / cnt


@torch.no_grad()
def eval_loss_fast(p, cfg, xs, ys, bs=16):
    full = [(x, y) for x, y in zip(xs, ys) if len(x) == len(xs[0])]
    rest = [(x, y) for x, y in zip(xs, ys) if len(x) != len(xs[0])]
    tot, cnt = 0.0, 0
    for i in range(0, len(full), bs):
        bx = torch.tensor([x for x, _ in full[i:i + bs]])
        by = torch.tensor([y for _, y in full[i:i + bs]])
        lg = forward(p, cfg, bx)
        tot += F.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), by.reshape(-1), reduction="sum").item()
        cnt += by.numel()
    if rest:
        t, c = eval_loss(p, cfg, [x for x, _ in rest], [y for _, y in rest]), sum(len(y) for _, y in rest)
        tot += t * c
        cnt += c
    return tot / cnt


def train(p, cfg, tokens, line_starts, bos_id, args, heldout_xy, log):
    ctx = args.ctx
    params = [p[n].requires_grad_() for n in sorted(p)]
    decay = [p[n] for n in sorted(p) if p[n].dim() == 2 and "embed_tokens" not in n]
    no_decay = [p[n] for n in sorted(p) if not (p[n].dim() == 2 and "embed_tokens" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(args.seed)
    tok = np.asarray(tokens, dtype=np.int64)
    starts = np.asarray([s for s in line_starts if s + ctx <= len(tok)], dtype=np.int64)
    sched = lambda step: (args.lr * (step + 1) / args.warmup if step < args.warmup else
                          args.min_lr + 0.5 * (args.lr - args.min_lr) *
                          (1 + math.cos(math.pi * (step - args.warmup) / max(1, args.steps - args.warmup))))
    rope = rope_tables(cfg, ctx, torch.float32)
    t0 = time.time()
    ema = None
    hx, hy = heldout_xy
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = sched(step)
        s = rng.choice(starts, size=args.batch)
        y = np.stack([tok[i:i + ctx] for i in s])
        x = np.concatenate([np.full((args.batch, 1), bos_id), y[:, :-1]], 1)
        logits = forward(p, cfg, torch.from_numpy(x), rope)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % args.log_every == 0 or step == 0:
            el = time.time() - t0
            log("step %5d/%d  loss %.4f (ema %.4f)  lr %.2e  %.0fs elapsed, %.0fs to go" %
                (step + 1, args.steps, loss.item(), ema, sched(step), el, el / (step + 1) * (args.steps - step - 1)))
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            k = min(len(hx), 24)
            log("  held-out loss (first %d windows) %.4f" % (k, eval_loss_fast(p, cfg, hx[:k], hy[:k])))
    for t in params:
        t.requires_grad_(False)
    return ema, time.time() - t0

# ---------------------------------------------------------------- outputs


@torch.no_grad()
def greedy(p, cfg, ids, n):
    ids = list(ids)
    out, margins = [], []
    for _ in range(n):
        lg = forward(p, cfg, torch.tensor([ids[-cfg["max_position_embeddings"]:]]))[0, -1]
        top = torch.topk(lg, 2)
        nxt = int(top.indices[0])
        out.append(nxt)
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(nxt)
    return out, margins


@torch.no_grad()
def sample(p, cfg, ids, n, temp, top_k, gen):
    ids = list(ids)
    out = []
    for _ in range(n):
        lg = forward(p, cfg, torch.tensor([ids[-cfg["max_position_embeddings"]:]]))[0, -1] / temp
        v, i = torch.topk(lg, top_k)
        nxt = int(i[torch.multinomial(torch.softmax(v, -1), 1, generator=gen)])
        out.append(nxt)
        ids.append(nxt)
    return out


def reference(p_bf16, cfg, tk, prompts, n_gen):
    p64 = {n: t.double() for n, t in p_bf16.items()}
    items = []
    for text in prompts:
        ids = tk.encode(text)
        lg = forward(p64, cfg, torch.tensor([ids]))[0, -1]
        gen, margins = greedy(p64, cfg, ids, n_gen)
        top = torch.topk(lg, 5)
        items.append({
            "prompt": text,
            "tokens": ids,
            "last_logits_first16": [float(np.float32(v)) for v in lg[:16].tolist()],
            "last_argmax": int(lg.argmax()),
            "last_top5": {"ids": top.indices.tolist(), "logits": [float(np.float32(v)) for v in top.values.tolist()]},
            "last_logsumexp": float(np.float32(torch.logsumexp(lg, 0).item())),
            "greedy_ids": gen,
            "greedy_text": tk.decode(gen),
            "greedy_min_margin": min(margins),
        })
    return {
        "description": "mixq tiny-en reference: logits of the last prompt position and a greedy "
                       "continuation, computed by tools/train_tiny.py's torch forward pass "
                       "(HF LlamaForCausalLM semantics) in float64 from the bf16 weights of "
                       "model.safetensors, rounded to float32 for the file. tokens include the "
                       "<|bos|> the tokenizer's post-processor prepends. greedy_min_margin is the "
                       "smallest top1-top2 logit gap over the greedy steps (ties would make a "
                       "float32 engine free to differ).",
        "dtype": "float64 compute from bf16 weights",
        "n_greedy": n_gen,
        "prompts": items,
    }


def write_json(path, obj, indent=2, sort_keys=True):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
        f.write("\n")


README = """# tiny-en — mixq's demo model

A {nparams_m:.1f}M-parameter Llama-architecture language model and its own 4096-token byte-level
BPE tokenizer, trained from scratch by [`tools/train_tiny.py`](../../tools/train_tiny.py) on the
World English Bible. It writes Bible-flavoured English; it knows nothing else. It exists so that
mixq can show real text, and measure every quantization scheme, without downloading weights.

## Data

The **World English Bible** (with Deuterocanon, 2020 stable text, SWORD module `engWEB2015eb`),
from the Debian package **`sword-text-web`**. The World English Bible is dedicated to the
**public domain** by its translators (see `/usr/share/doc/sword-text-web/copyright`); the only
request is that a changed text not be called "World English Bible" — the text here is
re-formatted (markup, footnotes, headings and the glossary removed; curly quotes made ASCII) and
used only as training data. We chose it over the King James text of `bible-kjv-text` because it
is modern English (a nicer demo), it is public domain everywhere (the KJV is under Crown
prerogative in the UK), and its zlib-compressed SWORD module is readable with Python's standard
library (the KJV package uses its own compression).

{n_chars:,} characters of text after cleaning: the first {n_train:,} train, the last
{n_held:,} (the end of Revelation) are held out in `heldout.txt`.

## Tokenizer

Byte-level BPE, GPT-2 style, trained by the script: vocabulary {vocab} = 256 byte tokens (id =
byte value) + {n_merges} merges + `<|bos|>` ({bos_id}) + `<|eos|>` ({eos_id}).
Pre-tokenizer: `ByteLevel` with `use_regex: true`, `add_prefix_space: false`, i.e. the GPT-2
regex `{pattern}`. Decoder: `ByteLevel`. No normalizer. The `TemplateProcessing`
post-processor prepends `<|bos|>` to every encoded text (`tokenizer_class` is
`PreTrainedTokenizerFast`, so there is no `add_bos_token` flag). `<|eos|>` exists but never
occurs in the training data. No chat template: this is a plain completion model.

## Model

`LlamaForCausalLM`: hidden 256, {layers} layers, 8 attention heads and 4 KV heads (head_dim 32),
SwiGLU MLP with intermediate 768, RMSNorm (eps 1e-5), RoPE (theta 10000, rotate-half),
**tied** embeddings (no `lm_head.weight`), context 256. Every Linear's input size (256 or 768) is
a multiple of 128. {nparams:,} parameters, stored as bf16 in `model.safetensors`.

## Training

Windows of `<|bos|>` + 255 tokens starting at random line starts of the training text,
batch {batch}, {steps} steps ({tokens_seen:,} tokens, {epochs:.1f} epochs of the {n_train_tok:,}
training tokens), AdamW (betas 0.9/0.95, weight decay {wd} on matrices other than the
embedding), learning rate {lr} with {warmup} warm-up steps and a cosine decay to {min_lr},
gradient clipping 1.0, float32, seed {seed}, {threads} BLAS/torch thread(s). {train_time} of wall time on a
busy 2-core machine (other jobs running).

| | loss (nats/token) | perplexity |
|---|---|---|
| train (EMA of the last steps) | {train_loss:.3f} | {train_ppl:.1f} |
| held-out, float32 weights | {held_f32:.3f} | {held_f32_ppl:.2f} |
| held-out, bf16 weights (as shipped) | {held_bf16:.3f} | {held_bf16_ppl:.2f} |

Held-out loss is measured on non-overlapping windows of `<|bos|>` + 255 tokens of `heldout.txt`
({n_held_tok:,} tokens), every token scored. The held-out text is the end of Revelation, whose visions use
words and phrasing rare in the rest of the Bible, so its loss sits well above the training loss
(the model saw each training token only about once, so this is not memorisation).

## Samples (bf16 weights)

Greedy decoding (as `reference.json` and the tests use it) — a model this small soon loops:

{samples}

Sampled, temperature 0.8, top-k 40 (torch generator seed {seed}):

{sampled}

## Files

- `config.json`, `generation_config.json` — as transformers writes them for `LlamaForCausalLM`.
- `model.safetensors` — bf16, tensors in name order.
- `tokenizer.json`, `tokenizer_config.json` — Hugging Face `tokenizers` format.
- `heldout.txt` — held-out text for perplexity tests.
- `reference.json` — for fixed prompts: token ids, last-position logits and a 32-token greedy
  continuation, computed in float64 from the bf16 weights (mixq's tests compare against it).

## Re-training

    apt-get install sword-text-web python3-regex python3-torch libopenblas0-pthread
    nice -n 10 /usr/bin/python3 tools/train_tiny.py --out models/tiny-en

Seeds are fixed; results are reproducible with the same BLAS library and thread count (float
summation order differs between them). The shipped weights were trained with OpenBLAS 0.3.21
and one thread (`--threads 1`, the default).
"""

# ---------------------------------------------------------------- main


def main():
    args = ARGS
    if args.quick:
        args.out = "/tmp/tiny-en-quick" if args.out == "models/tiny-en" else args.out
        args.steps, args.vocab, args.warmup, args.eval_every, args.log_every = 30, 1024, 10, 0, 5
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()
    log = lambda s: print("[%6.0fs] %s" % (time.time() - t_start, s), flush=True)
    log("BLAS: LD_LIBRARY_PATH=%s OPENBLAS_NUM_THREADS=%s; torch threads %d" % (os.environ.get("LD_LIBRARY_PATH", ""), os.environ.get("OPENBLAS_NUM_THREADS", ""), args.threads))

    text = osis_to_text(read_web_osis())
    train_text, held_text = split_heldout(text)
    log("text: %d chars (%d train, %d held-out, %d held-out bytes)" %
        (len(text), len(train_text), len(held_text), len(held_text.encode())))
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)

    ck = torch.load(args.from_ckpt) if args.from_ckpt else None
    n_merges = (ck["args"]["vocab"] if ck is not None else args.vocab) - 256 - 2
    if ck is not None:
        merges = [tuple(m) for m in ck["merges"]]
        for k in ("steps", "batch", "ctx", "layers", "vocab", "lr", "min_lr", "warmup", "wd", "seed", "threads"):
            setattr(args, k, ck["args"][k])  # describe the run that made the weights
    else:
        merges = train_bpe(train_text, n_merges)
        log("BPE: %d merges learned (first %s, last %s)" % (len(merges), merges[:3], merges[-3:]))
    if len(merges) != n_merges:
        sys.exit("train_tiny.py: only %d merges learned, wanted %d" % (len(merges), n_merges))
    tk = Tokenizer(merges)
    assert len(tk.vocab) == args.vocab
    write_json(os.path.join(args.out, "tokenizer.json"), tk.tokenizer_json(), indent=2, sort_keys=False)
    write_json(os.path.join(args.out, "tokenizer_config.json"), tk.tokenizer_config(args.ctx))

    train_ids = tk.encode(train_text, add_bos=False)
    held_ids = tk.encode(held_text, add_bos=False)
    for name, t, ids in (("train", train_text, train_ids), ("held-out", held_text, held_ids)):
        if tk.decode(ids) != t:
            sys.exit("train_tiny.py: tokenizer round trip failed on the %s text" % name)
    log("tokens: %d train (%.2f bytes/token), %d held-out; round trip OK" %
        (len(train_ids), len(train_text.encode()) / len(train_ids), len(held_ids)))
    nl = tk.vocab[B2U[10]]
    line_starts = [0] + [i + 1 for i, t in enumerate(train_ids) if t == nl]

    cfg = make_config(args.vocab, tk.bos_id, tk.eos_id, args.ctx)
    cfg["num_hidden_layers"] = args.layers
    heldout_xy = batches_eval(held_ids, tk.bos_id, args.ctx)
    if ck is not None:
        p = ck["params"]
        train_loss, train_time = ck["train_loss"], ck["train_time"]
    else:
        p = init_params(cfg, args.seed)
        nparams = sum(t.numel() for t in p.values())
        log("model: %d parameters; training %d steps of %dx%d tokens" % (nparams, args.steps, args.batch, args.ctx))
        train_loss, train_time = train(p, cfg, train_ids, line_starts, tk.bos_id, args, heldout_xy, log)
        if args.save_ckpt:
            torch.save({"params": p, "merges": merges, "train_loss": train_loss, "train_time": train_time,
                        "args": vars(args)}, args.save_ckpt)
    nparams = sum(t.numel() for t in p.values())

    # export
    st_path = os.path.join(args.out, "model.safetensors")
    write_safetensors_bf16(st_path, p)
    pb = read_safetensors(st_path)
    assert sorted(pb) == sorted(p)
    for n in p:
        assert torch.equal(pb[n], p[n].to(torch.bfloat16).float()), n
    write_json(os.path.join(args.out, "config.json"), cfg)
    write_json(os.path.join(args.out, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": tk.bos_id, "eos_token_id": tk.eos_id,
                "transformers_version": cfg["transformers_version"]})

    hx, hy = heldout_xy
    held_f32 = eval_loss_fast(p, cfg, hx, hy)
    held_bf16 = eval_loss_fast(pb, cfg, hx, hy)
    log("final: train loss (ema) %.4f, held-out %.4f (f32) / %.4f (bf16 weights), ppl %.2f" %
        (train_loss, held_f32, held_bf16, math.exp(held_bf16)))

    prompts = ["In the beginning, God", "Jesus said to them,"]
    ref = reference(pb, cfg, tk, prompts, 32)
    write_json(os.path.join(args.out, "reference.json"), ref)
    samples = []
    for prompt in prompts + ["The king of Israel", "Blessed are"]:
        gen, _ = greedy(pb, cfg, tk.encode(prompt), 48)
        s = prompt + tk.decode(gen)
        samples.append("> " + s.replace("\n", " ⏎ "))
        log("greedy sample: %r" % s)
    sampled = []
    g = torch.Generator().manual_seed(args.seed)
    for prompt in ["In the beginning, God", "The Lord said to Moses,", "Jesus said to them,"]:
        gen = sample(pb, cfg, tk.encode(prompt), 64, 0.8, 40, g)
        s = prompt + tk.decode(gen)
        sampled.append("> " + s.replace("\n", " ⏎ "))
        log("sampled (T=0.8, top-k 40): %r" % s)

    mins, secs = divmod(int(round(train_time)), 60)
    readme = README.format(
        nparams_m=nparams / 1e6, nparams=nparams, n_chars=len(text), n_train=len(train_text),
        n_held=len(held_text), vocab=args.vocab, n_merges=n_merges, bos_id=tk.bos_id, eos_id=tk.eos_id,
        pattern=GPT2_PATTERN, layers=args.layers, batch=args.batch, steps=args.steps,
        tokens_seen=args.steps * args.batch * args.ctx,
        epochs=args.steps * args.batch * args.ctx / len(train_ids), n_train_tok=len(train_ids),
        wd=args.wd, lr=args.lr, warmup=args.warmup, min_lr=args.min_lr, seed=args.seed,
        train_time="%d min %02d s" % (mins, secs), train_loss=train_loss, train_ppl=math.exp(train_loss),
        held_f32=held_f32, held_f32_ppl=math.exp(held_f32), held_bf16=held_bf16,
        held_bf16_ppl=math.exp(held_bf16), n_held_tok=len(held_ids), samples="\n\n".join(samples),
        sampled="\n\n".join(sampled), threads=args.threads)
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)
    total = 0
    for n in sorted(os.listdir(args.out)):
        sz = os.path.getsize(os.path.join(args.out, n))
        total += sz
        log("wrote %s/%s (%d bytes)" % (args.out, n, sz))
    log("total %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
