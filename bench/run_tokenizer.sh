#!/bin/sh
# run_tokenizer.sh BUILD: tokenizer throughput (one thread) for every fixture tokenizer
# on the SpamAssassin dev emails. Hugging Face `tokenizers` cannot run here (no PyPI);
# its published single-core order of magnitude is printed beside ours for reference.
set -eu
BUILD=${1:-build}
work=$BUILD/bench-data
mkdir -p "$work"
[ -f "$work/spam-dev.jsonl" ] || xz -dc tests/data/spam-dev.jsonl.xz > "$work/spam-dev.jsonl"
[ -d "$work/tokenizers" ] || tar -xJf tests/data/tokenizers.tar.xz -C "$work"
echo "# reference: HF tokenizers (Rust) publishes ~1 GB of text in <20 s, i.e. roughly"
echo "# 0.5-1.5M tokens/s per core for BERT WordPiece and 0.3-1M for byte-level BPE."
for t in bert-uncased gpt2 roberta llama2 llama3 qwen3 xlmr-unigram t5-unigram; do
    "$BUILD/bench/bench-tokenizer" "$work/tokenizers/$t" "$work/spam-dev.jsonl" \
        --seconds "${SECONDS_PER:-3}" --label "$t"
done
