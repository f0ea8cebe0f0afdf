#!/bin/sh
# The main job on the embedded default: build mixq, generate text with the
# shipped model (models/tiny-en, trained on the World English Bible), then the
# same model quantized to 4-bit GPTQ by mixq's own writer.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s all >/dev/null
echo "== models/tiny-en (bf16): mixq run -p 'In the beginning' --temp 0.7 --seed 1"
build/mixq run models/tiny-en -p "In the beginning" -n 64 --temp 0.7 --seed 1
echo
Q=build/demo-tiny-en-gptq
rm -rf "$Q"
build/mixq quantize models/tiny-en "$Q" --format gptq --group-size 128 >/dev/null
echo "== the same model as 4-bit GPTQ ($Q):"
build/mixq inspect "$Q" | sed -n '1,2p;/bits per weight/p'
build/mixq run "$Q" -p "In the beginning" -n 64 --temp 0.7 --seed 1
echo
