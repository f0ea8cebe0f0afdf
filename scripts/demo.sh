#!/bin/sh
# The main job on an embedded default: build mixq, generate a small random
# float checkpoint with mixq's own tool, show what mixq sees in it and print
# the logits of a few tokens. (Real text generation comes with the tokenizer
# and the shipped model.)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s all >/dev/null
M=build/demo-tiny
build/mixq make-tiny "$M" --arch qwen3 --dtype bf16
build/mixq inspect "$M"
build/mixq logits "$M" --tokens 1,42,7,99 --out build/demo-logits.f32
echo "first logits of the last position:"
od -A n -t f4 -j $((3 * 256 * 4)) -N 32 build/demo-logits.f32
