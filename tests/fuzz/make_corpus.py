#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (tests/fuzz/corpus/<target>/): small
valid inputs of every kind each parser reads. Run once from the repository
root after building build/mixq; the outputs are committed and reruns are
byte-identical.  usage: python3 tests/fuzz/make_corpus.py [SHARED_DIR]"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "data")
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def jdump(o):
    return json.dumps(o, indent=1, sort_keys=False)


# ---- safetensors -----------------------------------------------------------
DT = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
      "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def safetensors(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape); data bytes are a pattern."""
    hdr, blobs, off = {}, [], 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape in tensors:
        n = DT[dt]
        for s in shape:
            n *= s
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(bytes((i * 7 + len(name)) & 0xFF for i in range(n)))
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def seeds_safetensors():
    t = "safetensors"
    out(t, "empty", safetensors([]))
    out(t, "meta_only", safetensors([], {"format": "pt"}))
    out(t, "one_f32", safetensors([("w", "F32", [2, 3])], {"format": "pt"}))
    out(t, "scalar_and_empty", safetensors([("s", "F32", []), ("z", "F16", [0, 4]), ("v", "I8", [5])]))
    out(t, "all_dtypes", safetensors([("t_" + d.lower(), d, [2, 2]) for d in DT]))
    out(t, "unpadded", safetensors([("a", "BF16", [3]), ("b", "I32", [1, 1, 2])], pad=False))
    out(t, "eight_dims", safetensors([("x", "U8", [1, 2, 1, 2, 1, 2, 1, 2])]))
    # a llama-shaped table (tiny sizes), names as the loader looks them up
    names = [("model.embed_tokens.weight", [16, 8]), ("model.norm.weight", [8]), ("lm_head.weight", [16, 8])]
    for i in range(2):
        p = "model.layers.%d." % i
        names += [(p + "input_layernorm.weight", [8]), (p + "post_attention_layernorm.weight", [8])]
        for m, s in [("self_attn.q_proj", [8, 8]), ("self_attn.k_proj", [4, 8]), ("self_attn.v_proj", [4, 8]),
                     ("self_attn.o_proj", [8, 8]), ("mlp.gate_proj", [12, 8]), ("mlp.up_proj", [12, 8]),
                     ("mlp.down_proj", [8, 12])]:
            names.append((p + m + ".weight", s))
    out(t, "llama_tiny", safetensors([(n, "F16", s) for n, s in names], {"format": "pt"}))
    q = "model.layers.0.self_attn.q_proj."
    out(t, "gptq_layer", safetensors([(q + "qweight", "I32", [8, 32]), (q + "qzeros", "I32", [2, 4]),
                                      (q + "scales", "F16", [2, 32]), (q + "g_idx", "I32", [64]),
                                      (q + "bias", "F16", [32])], {"format": "pt"}))
    out(t, "ct_layer", safetensors([(q + "weight_packed", "I32", [32, 8]), (q + "weight_scale", "BF16", [32, 2]),
                                    (q + "weight_shape", "I64", [2])]))


# ---- config.json -----------------------------------------------------------
def seeds_config():
    for m in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, m, "config.json")
        if os.path.exists(p):
            out("config", m + ".json", open(p, "rb").read())
    p = os.path.join(SHARED, "fixtures", "stories260K", "hf", "config.json")
    if os.path.exists(p):
        out("config", "stories260K.json", open(p, "rb").read())
    base = json.load(open(os.path.join(DATA, "tiny-qwen3", "config.json")))
    v = dict(base, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6,
                                    "original_max_position_embeddings": 64, "mscale": 0.7,
                                    "mscale_all_dim": 1.0, "truncate": False})
    out("config", "rope_parameters_yarn.json", jdump(v))
    v = dict(base, rope_scaling={"type": "linear", "factor": 2.0}, partial_rotary_factor=0.5,
             eos_token_id=[2, 3], head_dim=32)
    out("config", "linear_partial.json", jdump(v))
    out("config", "minimal.json", jdump({"model_type": "llama", "vocab_size": 32, "hidden_size": 8,
                                         "intermediate_size": 16, "num_hidden_layers": 1,
                                         "num_attention_heads": 2}))


# ---- quantization_config ---------------------------------------------------
def seeds_qconfig(tmp):
    mixq = os.path.join(ROOT, "build", "mixq")
    runs = {
        "awq": ["--format", "awq"],
        "awq_sym": ["--format", "awq", "--sym"],
        "gptq": ["--format", "gptq"],
        "gptq_act": ["--format", "gptq", "--desc-act"],
        "gptq_v2_8bit": ["--format", "gptq-v2", "--bits", "8"],
        "gptq_3bit_ignore": ["--format", "gptq", "--bits", "3", "--ignore", "model.layers.0.mlp.down_proj"],
        "autoround": ["--format", "auto-round"],
        "autoround_gptqmodel": ["--format", "auto-round", "--packing", "gptqmodel", "--desc-act",
                                "--layer-bits", "model.layers.1.mlp=8"],
        "autoround_awq": ["--format", "auto-round", "--packing", "auto_awq"],
        "ct_w4a16": ["--format", "ct-w4a16"],
        "ct_w8a16_channel": ["--format", "ct-w8a16", "--group-size", "-1"],
        "ct_dense_asym": ["--format", "ct-w4a16", "--bits", "3", "--packing", "dense", "--asym"],
        "ct_actorder": ["--format", "ct-w4a16", "--desc-act"],
    }
    for name, args in sorted(runs.items()):
        d = os.path.join(tmp, name)
        a = [mixq, "quantize", os.path.join(DATA, "tiny-llama3"), d, "--group-size", "32"] + args
        if "-1" in args:
            a = [mixq, "quantize", os.path.join(DATA, "tiny-llama3"), d] + args
        subprocess.run(a, check=True, stdout=subprocess.DEVNULL)
        qc = json.load(open(os.path.join(d, "config.json")))["quantization_config"]
        for k in ("model_name_or_path",):  # temp paths would make reruns differ
            qc.pop(k, None)
        out("qconfig", name + ".json", jdump(qc))
    # hand-written: producer features the writer does not emit
    out("qconfig", "gptqmodel_dynamic.json", jdump({
        "quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False,
        "checkpoint_format": "gptq_v2", "lm_head": True,
        "dynamic": {"-:.*\\.mlp\\.gate$": {}, "+:.*down_proj.*": {"bits": 8, "group_size": 32},
                    ".*layers\\.1\\..*": {"bits": 2, "sym": False}},
        "modules_in_block_to_quantize": [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
                                         ["mlp.up_proj", "mlp.gate_proj"], ["mlp.down_proj"]]}))
    out("qconfig", "awq_skip.json", jdump({"quant_method": "awq", "w_bit": 4, "q_group_size": 64,
                                           "zero_point": False, "version": "GEMM",
                                           "modules_to_not_convert": ["down_proj", "gate"]}))
    out("qconfig", "autoround_regex.json", jdump({
        "quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True,
        "packing_format": "auto_round", "data_type": "int", "to_quant_block_names": ["model.layers"],
        "extra_config": {"lm_head": {"bits": 16}, ".*self_attn.*": {"bits": 8, "group_size": -1},
                         "model.layers.0.mlp.up_proj": {"bits": 3, "sym": False, "data_type": "int"}}}))
    out("qconfig", "ct_mixed.json", jdump({
        "quant_method": "compressed-tensors", "format": "mixed-precision", "ignore": ["lm_head", "re:.*mlp\\.gate$"],
        "config_groups": {
            "g0": {"targets": ["re:.*self_attn.*"], "format": "int-quantized",
                   "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"},
                   "input_activations": {"num_bits": 8, "type": "int", "dynamic": True, "strategy": "token"}},
            "g1": {"targets": ["Linear"], "format": "pack-quantized",
                   "weights": {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group",
                               "group_size": 32, "actorder": "group"}},
            "g2": {"targets": ["model.layers.1.mlp.down_proj"], "format": "float-quantized",
                   "weights": {"num_bits": 8, "type": "float", "strategy": "tensor"},
                   "input_activations": {"num_bits": 8, "type": "float", "dynamic": True}}}}))
    out("qconfig", "quantize_config_legacy.json", jdump({"bits": 4, "group_size": 128, "desc_act": True,
                                                          "sym": True, "true_sequential": True}))


# ---- quant_model_description.json ------------------------------------------
def st_names(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return [k for k in h if k != "__metadata__"]


def seeds_modelslim():
    names = st_names(os.path.join(DATA, "tiny-llama3", "model.safetensors"))
    lin = lambda n: n.startswith("model.layers.") and n.endswith("_proj.weight")

    def desc(type_of, extra=None):
        d = {"model_quant_type": "W8A8", "version": "1.0.0"}
        for n in sorted(names):
            if not lin(n):
                d[n] = "FLOAT"
                continue
            ty = type_of(n[:-7])
            d[n] = ty
            if ty == "W8A8":
                for s in ("input_scale", "input_offset", "deq_scale", "quant_bias"):
                    d[n[:-7] + "." + s] = ty
            elif ty != "FLOAT":
                for s in ("weight_scale", "weight_offset"):
                    d[n[:-7] + "." + s] = ty
        d.update(extra or {})
        return jdump(d)

    # the recipe tests/modelslim_tiny.h builds (what the fuzz target loads)
    out("modelslim_desc", "default.json", desc(lambda m: "W8A8" if ".self_attn." in m else "W8A8_DYNAMIC"))
    out("modelslim_desc", "all_dynamic.json", desc(lambda m: "W8A8_DYNAMIC"))
    out("modelslim_desc", "float_mlp_kv.json",
        desc(lambda m: "FLOAT" if ".mlp." in m else "W8A8", {"kv_quant_type": "C8", "fa_quant_type": "FAKQuant"}))
    out("modelslim_desc", "w4a8_mix.json",
        desc(lambda m: "W4A8_DYNAMIC" if "down" in m else ("W8A16" if ".mlp." in m else "W8A8"),
             {"group_size": 256, "ignore": ["model.layers.1.mlp.down_proj"], "metadata": {"quantizer": "x"}}))


# ---- tokenizers ------------------------------------------------------------
TINY = {"version": "1.0", "added_tokens": [
    {"id": 4, "content": "<x>", "lstrip": True, "rstrip": False, "single_word": False, "normalized": False, "special": True},
    {"id": 5, "content": "<y>", "lstrip": False, "rstrip": True, "single_word": False, "normalized": False, "special": True},
    {"id": 6, "content": "cat", "lstrip": False, "rstrip": False, "single_word": True, "normalized": True, "special": False}],
    "normalizer": None, "pre_tokenizer": None,
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<y>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<y>": {"id": "<y>", "ids": [5], "tokens": ["<y>"]}}},
    "decoder": None,
    "model": {"type": "BPE", "unk_token": "?", "fuse_unk": True,
              "vocab": {"a": 0, "b": 1, " ": 2, "ab": 3, "c": 7, "t": 8, "?": 10}, "merges": ["a b"]}}


def seeds_tokenizer():
    t = "tokenizer"
    out(t, "tiny_added.json", jdump(TINY))
    for b in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        out(t, "split_%s.json" % b.lower(), jdump({
            "model": {"type": "BPE", "vocab": {"a": 0, "-": 1, "a-": 2, "-a": 3, "--": 4},
                      "merges": ["a -", "- a", "- -"]},
            "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": b, "invert": False}}))
    out(t, "metaspace.json", jdump({
        "model": {"type": "BPE", "vocab": {"\u2581": 0, "a": 1, "\u2581a": 2, "b": 3, "\u2581b": 4, "<s>": 5},
                  "merges": ["\u2581 a", "\u2581 b"]},
        "added_tokens": [{"id": 5, "content": "<s>", "special": True, "normalized": False}],
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}}))
    out(t, "bytelevel_nfc.json", jdump({
        "model": {"type": "BPE", "vocab": {"\u0120": 0, "a": 1, "\u0120a": 2, "\u00c3": 3, "\u00a9": 4,
                                           "\u00c3\u00a9": 5, "e": 6, "\u00cc": 7, "\u0123": 8},
                  "merges": ["\u0120 a", "\u00c3 \u00a9"]},
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True},
        "decoder": {"type": "ByteLevel"}}))
    out(t, "spm_bytefallback.json", jdump({
        "model": {"type": "BPE", "byte_fallback": True, "fuse_unk": True, "unk_token": "<unk>",
                  "vocab": dict([("<unk>", 0), ("<s>", 1), ("</s>", 2)] +
                                [("<0x%02X>" % i, 3 + i) for i in range(256)] +
                                [("\u2581", 259), ("h", 260), ("i", 261), ("\u2581h", 262), ("\u2581hi", 263)]),
                  "merges": [["\u2581", "h"], ["\u2581h", "i"]]},
        "added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
                         {"id": 2, "content": "</s>", "special": True}],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}))
    out(t, "split_regex.json", jdump({
        "model": {"type": "BPE", "vocab": {"a": 0, "1": 1, " ": 2, "\u0120": 3}, "merges": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "decoder": {"type": "ByteLevel"}}))
    p = os.path.join(SHARED, "fixtures", "stories260K", "hf", "tokenizer.json")
    if os.path.exists(p):
        out(t, "stories260K.json", open(p, "rb").read())


def seeds_tokenize():
    t = "tokenize"
    out(t, "ascii", "Hello world! How are you doing today? 1234567 don't")
    out(t, "specials", "<s>Hi</s> <|endoftext|> <x>cat<y> <|im_start|>user\nhey<|im_end|>")
    out(t, "utf8", "\u00e9t\u00e9 \u65e5\u672c\u8a9e \U0001f600 \u0645\u0631\u062d\u0628\u0627 e\u0301 \u2581 \t\n  x")
    out(t, "bad_utf8", b"ab\xff\xfe\xc3 \xe6\x97 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf z")
    out(t, "spaces", " " * 40 + "\n\n\r\n\t\t  a  b")
    out(t, "digits", "3.14159265358979 0x1F 1e10 -42")
    p = os.path.join(SHARED, "fixtures", "tokenizers", "hf-gpt2", "gpt-2.inp")
    if os.path.exists(p):
        for i, s in enumerate(open(p, "rb").read().split(b"\n__ggml_vocab_test__\n")):
            if s:
                out(t, "vocab_test_%02d" % i, s)


# ---- GGUF ------------------------------------------------------------------
def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gkv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def gguf(kvs, tensors, align=32, version=3):
    """tensors: (name, ggml type, ne list, nbytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    infos, blobs, off = b"", b"", 0
    for name, ty, ne, nb in tensors:
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", ty, off)
        blob = bytes((i * 13 + 5) & 0xFF for i in range(nb))
        # keep f16 scales of block types finite-ish: high byte small
        blobs += blob + b"\0" * (-nb % align)
        off += nb + (-nb % align)
    b = head + infos
    b += b"\0" * (-len(b) % align)
    return b + blobs


def seeds_gguf():
    t = "gguf"
    U32, I32, F32, BOOL, STR, ARR, U64 = 4, 5, 6, 7, 8, 9, 10
    kv = [gkv("general.architecture", STR, gstr("llama")),
          gkv("general.name", STR, gstr("tiny")),
          gkv("llama.block_count", U32, struct.pack("<I", 1)),
          gkv("llama.context_length", U64, struct.pack("<Q", 128)),
          gkv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
          gkv("general.flag", BOOL, b"\x01"),
          gkv("tokenizer.ggml.model", STR, gstr("llama")),
          gkv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 4) + b"".join(gstr(s) for s in ["<unk>", "<s>", "a", "\u2581b"])),
          gkv("tokenizer.ggml.scores", ARR, struct.pack("<IQ", F32, 4) + struct.pack("<4f", 0, 0, -1, -2)),
          gkv("tokenizer.ggml.token_type", ARR, struct.pack("<IQ", I32, 4) + struct.pack("<4i", 2, 3, 1, 1))]
    out(t, "kv_only.gguf", gguf(kv, []))
    out(t, "empty.gguf", gguf([], []))
    out(t, "v2.gguf", gguf(kv[:3], [("w", 0, [4, 2], 32)], version=2))
    types = [("f32", 0, 1, 4), ("f16", 1, 1, 2), ("q4_0", 2, 32, 18), ("q4_1", 3, 32, 20),
             ("q5_0", 6, 32, 22), ("q5_1", 7, 32, 24), ("q8_0", 8, 32, 34), ("q2_K", 10, 256, 84),
             ("q3_K", 11, 256, 110), ("q4_K", 12, 256, 144), ("q5_K", 13, 256, 176),
             ("q6_K", 14, 256, 210), ("iq4_nl", 20, 32, 18), ("bf16", 30, 1, 2)]
    tens = []
    for name, ty, blck, size in types:
        n0 = blck if blck > 1 else 8
        tens.append(("blk.0.%s.weight" % name, ty, [n0, 2], 2 * size * (n0 // blck)))
    out(t, "all_types.gguf", gguf(kv[:3], tens))
    out(t, "align64.gguf", gguf([gkv("general.alignment", U32, struct.pack("<I", 64))] + kv[:2],
                                [("a", 0, [3], 12), ("b", 8, [32, 1, 1], 34)], align=64))
    # tiny llama models the GGUF model loader accepts: F32 (D 8) and Q8_0 (D 32),
    # with an SPM vocabulary of 16 tokens, and a qwen2 one with a gpt2 vocabulary
    def model(arch, D, H, KV, FF, V, ty, vocab_kvs, bias=False):
        hd = D // H
        kvs = [gkv("general.architecture", STR, gstr(arch)),
               gkv(arch + ".block_count", U32, struct.pack("<I", 1)),
               gkv(arch + ".context_length", U32, struct.pack("<I", 64)),
               gkv(arch + ".embedding_length", U32, struct.pack("<I", D)),
               gkv(arch + ".feed_forward_length", U32, struct.pack("<I", FF)),
               gkv(arch + ".attention.head_count", U32, struct.pack("<I", H)),
               gkv(arch + ".attention.head_count_kv", U32, struct.pack("<I", KV)),
               gkv(arch + ".attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
               gkv(arch + ".rope.freq_base", F32, struct.pack("<f", 10000.0))] + vocab_kvs

        def size(ne, t):
            n = 1
            for x in ne:
                n *= x
            return n * 4 if t == 0 else n // 32 * 34

        tens = []
        def add(name, ne, t):
            tens.append((name, t, ne, size(ne, t)))
        add("token_embd.weight", [D, V], ty)
        add("output_norm.weight", [D], 0)
        add("output.weight", [D, V], ty)
        add("blk.0.attn_norm.weight", [D], 0)
        add("blk.0.ffn_norm.weight", [D], 0)
        add("blk.0.attn_q.weight", [D, H * hd], ty)
        add("blk.0.attn_k.weight", [D, KV * hd], ty)
        add("blk.0.attn_v.weight", [D, KV * hd], ty)
        add("blk.0.attn_output.weight", [H * hd, D], ty)
        if bias:
            add("blk.0.attn_q.bias", [H * hd], 0)
            add("blk.0.attn_k.bias", [KV * hd], 0)
            add("blk.0.attn_v.bias", [KV * hd], 0)
        add("blk.0.ffn_gate.weight", [D, FF], ty)
        add("blk.0.ffn_up.weight", [D, FF], ty)
        add("blk.0.ffn_down.weight", [FF, D], ty)
        return gguf(kvs, tens)

    spm = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "c", "\u2581a", "\u2581b", "ab", "<0x0A>", "<0xFF>",
           "\u2581ab", "x", "y", "z"]
    spm_kvs = [gkv("tokenizer.ggml.model", STR, gstr("llama")),
               gkv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 16) + b"".join(gstr(x) for x in spm)),
               gkv("tokenizer.ggml.scores", ARR, struct.pack("<IQ", F32, 16) + struct.pack("<16f", *[-i for i in range(16)])),
               gkv("tokenizer.ggml.token_type", ARR, struct.pack("<IQ", I32, 16) +
                   struct.pack("<16i", 2, 3, 3, *([1] * 7), 6, 6, 1, 1, 1, 1)),
               gkv("tokenizer.ggml.bos_token_id", U32, struct.pack("<I", 1)),
               gkv("tokenizer.ggml.eos_token_id", U32, struct.pack("<I", 2))]
    out(t, "model_llama_f32.gguf", model("llama", 8, 2, 1, 16, 16, 0, spm_kvs))
    out(t, "model_llama_q8_0.gguf", model("llama", 32, 4, 2, 64, 16, 8, spm_kvs))
    bpe = ["a", "b", "c", "\u0120", "ab", "\u0120a", "bc", "<|endoftext|>"]
    bpe_kvs = [gkv("tokenizer.ggml.model", STR, gstr("gpt2")), gkv("tokenizer.ggml.pre", STR, gstr("qwen2")),
               gkv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 8) + b"".join(gstr(x) for x in bpe)),
               gkv("tokenizer.ggml.token_type", ARR, struct.pack("<IQ", I32, 8) + struct.pack("<8i", *([1] * 7), 3)),
               gkv("tokenizer.ggml.merges", ARR, struct.pack("<IQ", STR, 3) +
                   b"".join(gstr(x) for x in ["a b", "\u0120 a", "b c"])),
               gkv("tokenizer.ggml.eos_token_id", U32, struct.pack("<I", 7))]
    out(t, "model_qwen2_f32_bpe.gguf", model("qwen2", 8, 2, 2, 16, 8, 0, bpe_kvs, bias=True))


# ---- whole checkpoints (config.json NUL model.safetensors) -------------------
def seeds_load(tmp):
    """A micro llama (hidden 32, 1 layer, vocab 16, F16) and its quantized
    copies in every writer format (group size 32)."""
    import random
    rnd = random.Random(5)
    D, FF, V, H, KV = 32, 64, 16, 4, 4
    hd = D // H
    cfg = {"model_type": "llama", "vocab_size": V, "hidden_size": D, "intermediate_size": FF,
           "num_hidden_layers": 1, "num_attention_heads": H, "num_key_value_heads": KV,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2}
    shapes = [("model.embed_tokens.weight", [V, D]), ("lm_head.weight", [V, D]), ("model.norm.weight", [D]),
              ("model.layers.0.input_layernorm.weight", [D]),
              ("model.layers.0.post_attention_layernorm.weight", [D]),
              ("model.layers.0.self_attn.q_proj.weight", [H * hd, D]),
              ("model.layers.0.self_attn.k_proj.weight", [KV * hd, D]),
              ("model.layers.0.self_attn.v_proj.weight", [KV * hd, D]),
              ("model.layers.0.self_attn.o_proj.weight", [D, H * hd]),
              ("model.layers.0.mlp.gate_proj.weight", [FF, D]), ("model.layers.0.mlp.up_proj.weight", [FF, D]),
              ("model.layers.0.mlp.down_proj.weight", [D, FF])]
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, shape in shapes:
        n = 1
        for x in shape:
            n *= x
        vals = [1.0 if "norm" in name else rnd.uniform(-0.5, 0.5) for _ in range(n)]
        b = struct.pack("<%de" % n, *vals)
        hdr[name] = {"dtype": "F16", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    src = os.path.join(tmp, "micro")
    os.makedirs(src)
    open(os.path.join(src, "config.json"), "w").write(json.dumps(cfg))
    open(os.path.join(src, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

    def seed(name, d):
        c = json.loads(open(os.path.join(d, "config.json"), "rb").read())
        c.get("quantization_config", {}).pop("model_name_or_path", None)  # a temp path: not reproducible
        c = json.dumps(c, separators=(",", ":")).encode()
        out("load", name, c + b"\0" + open(os.path.join(d, "model.safetensors"), "rb").read())

    seed("float_f16", src)
    mixq = os.path.join(ROOT, "build", "mixq")
    runs = {"awq": ["--format", "awq"], "gptq_act": ["--format", "gptq", "--desc-act", "--asym"],
            "gptq_v2_8bit": ["--format", "gptq-v2", "--bits", "8"], "gptq_3bit": ["--format", "gptq", "--bits", "3"],
            "autoround_gptqmodel": ["--format", "auto-round", "--packing", "gptqmodel", "--desc-act"],
            "autoround_awq": ["--format", "auto-round", "--packing", "auto_awq"],
            "ct_w4a16_asym_act": ["--format", "ct-w4a16", "--asym", "--desc-act"],
            "ct_w8a16": ["--format", "ct-w8a16"], "ct_3bit_dense": ["--format", "ct-w4a16", "--bits", "3", "--packing", "dense"],
            "ct_w8a8": ["--format", "ct-w8a8"], "ct_w4a8": ["--format", "ct-w4a8"]}
    for name, args in sorted(runs.items()):
        d = os.path.join(tmp, "q-" + name)
        subprocess.run([mixq, "quantize", src, d, "--group-size", "32", "--seed", "1"] + args, check=True,
                       stdout=subprocess.DEVNULL)
        seed(name, d)


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    with tempfile.TemporaryDirectory() as tmp:
        seeds_safetensors()
        seeds_config()
        seeds_qconfig(tmp)
        seeds_modelslim()
        seeds_tokenizer()
        seeds_tokenize()
        seeds_gguf()
        seeds_load(tmp)
    n = sum(len(fs) for _, _, fs in os.walk(CORPUS))
    print("make_corpus: %d seed files under %s" % (n, CORPUS))


if __name__ == "__main__":
    main()
