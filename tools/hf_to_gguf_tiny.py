"""Write the tiny Hugging Face test checkpoints as GGUF files (F32), so the
GGUF model path of mixq is tested on qwen3 and qwen3moe against the same
float64 golden logits as the safetensors path.

A minimal GGUF v3 writer of its own (no gguf package is available here): the
metadata keys and tensor names llama.cpp's converter uses for these
architectures (formats.md §5.7-5.8). Weights are copied exactly (F16/BF16
widened to F32); qwen3/qwen3moe use rotate-half RoPE in GGUF too, so q/k rows
are not permuted. Rerun: /usr/bin/python3 tools/hf_to_gguf_tiny.py tests/data
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a : base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: {name}: dtype {dt} not handled")
        out[name] = arr.reshape(info["shape"]).astype(np.float32)
    return out


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, value):
    out = gguf_string(key)
    if isinstance(value, str):
        return out + struct.pack("<I", 8) + gguf_string(value)
    if isinstance(value, float):
        return out + struct.pack("<If", 6, value)
    return out + struct.pack("<II", 4, int(value))  # u32


def write_gguf(path, meta, tensors):
    align = 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for k, v in meta:
        head += kv(k, v)
    offset, infos, datas = 0, b"", []
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        ne = list(reversed(arr.shape))
        infos += gguf_string(name) + struct.pack("<I", len(ne))
        infos += b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", 0, offset)  # type F32, offset
        data = arr.tobytes()
        pad = (-len(data)) % align
        datas.append(data + b"\0" * pad)
        offset += len(data) + pad
    body = head + infos
    body += b"\0" * ((-len(body)) % align)
    Path(path).write_bytes(body + b"".join(datas))


def convert(src, dst):
    cfg = json.loads((src / "config.json").read_text())
    w = read_safetensors(src / "model.safetensors")
    moe = cfg["model_type"] == "qwen3_moe"
    arch = "qwen3moe" if moe else "qwen3"
    meta = [
        ("general.architecture", arch),
        ("general.name", src.name),
        (f"{arch}.context_length", cfg["max_position_embeddings"]),
        (f"{arch}.embedding_length", cfg["hidden_size"]),
        (f"{arch}.block_count", cfg["num_hidden_layers"]),
        (f"{arch}.feed_forward_length", cfg["intermediate_size"]),
        (f"{arch}.attention.head_count", cfg["num_attention_heads"]),
        (f"{arch}.attention.head_count_kv", cfg["num_key_value_heads"]),
        (f"{arch}.attention.key_length", cfg["head_dim"]),
        (f"{arch}.attention.value_length", cfg["head_dim"]),
        (f"{arch}.attention.layer_norm_rms_epsilon", float(cfg["rms_norm_eps"])),
        (f"{arch}.rope.freq_base", float(cfg["rope_theta"])),
    ]
    if moe:
        meta += [
            (f"{arch}.expert_count", cfg["num_experts"]),
            (f"{arch}.expert_used_count", cfg["num_experts_per_tok"]),
            (f"{arch}.expert_feed_forward_length", cfg["moe_intermediate_size"]),
        ]
    t = [("token_embd.weight", w["model.embed_tokens.weight"])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        b = f"blk.{i}."
        t += [
            (b + "attn_norm.weight", w[p + "input_layernorm.weight"]),
            (b + "attn_q.weight", w[p + "self_attn.q_proj.weight"]),
            (b + "attn_k.weight", w[p + "self_attn.k_proj.weight"]),
            (b + "attn_v.weight", w[p + "self_attn.v_proj.weight"]),
            (b + "attn_output.weight", w[p + "self_attn.o_proj.weight"]),
            (b + "attn_q_norm.weight", w[p + "self_attn.q_norm.weight"]),
            (b + "attn_k_norm.weight", w[p + "self_attn.k_norm.weight"]),
            (b + "ffn_norm.weight", w[p + "post_attention_layernorm.weight"]),
        ]
        if p + "mlp.gate.weight" in w:  # a sparse layer: stacked experts [E, out, in]
            e = cfg["num_experts"]
            stack = lambda proj: np.stack([w[f"{p}mlp.experts.{x}.{proj}.weight"] for x in range(e)])
            t += [
                (b + "ffn_gate_inp.weight", w[p + "mlp.gate.weight"]),
                (b + "ffn_gate_exps.weight", stack("gate_proj")),
                (b + "ffn_up_exps.weight", stack("up_proj")),
                (b + "ffn_down_exps.weight", stack("down_proj")),
            ]
        else:
            t += [
                (b + "ffn_gate.weight", w[p + "mlp.gate_proj.weight"]),
                (b + "ffn_up.weight", w[p + "mlp.up_proj.weight"]),
                (b + "ffn_down.weight", w[p + "mlp.down_proj.weight"]),
            ]
    t += [("output_norm.weight", w["model.norm.weight"])]
    if "lm_head.weight" in w:
        t += [("output.weight", w["lm_head.weight"])]
    write_gguf(dst, meta, t)
    print(f"wrote {dst} ({dst.stat().st_size} bytes, {len(t)} tensors)")


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
    for name in ("tiny-qwen3", "tiny-qwen3-moe"):
        convert(root / name, root / name / f"{name}-f32.gguf")
