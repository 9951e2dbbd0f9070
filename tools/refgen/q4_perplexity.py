"""q4_perplexity.py: the int4 oracle for bench/run_perplexity.sh: transformers' perplexity on
train_tiny_llama.py's held-out split with every nn.Linear's weight (lm_head included, as
inferd's int4 does) replaced by its 4-bit round-to-nearest dequantization, the rule of
engine/ops/matmul_q4.c's q4_quantize (groups of 128 inputs, or 64 or 32 when 128 does not
divide them; scale (max - min) / 15 over a range that holds 0, zero round(-min / scale),
codes clamp(round(w / scale) + zero, 0, 15)). inferd's int4 with its many-token path off
(weight-only arithmetic, "int4-kernel") should land on this number.

usage: /work/venv-refgen/bin/python tools/refgen/q4_perplexity.py MODEL_DIR
"""

import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_tiny_llama  # noqa: E402  (the same windows and scoring)


def rtn_q4(w):
    out, k = w.shape
    g = next(g for g in (128, 64, 32) if k % g == 0)
    x = w.reshape(out, k // g, g).double()
    lo = torch.clamp(x.amin(dim=-1, keepdim=True), max=0.0)
    hi = torch.clamp(x.amax(dim=-1, keepdim=True), min=0.0)
    s = ((hi - lo) / 15.0).float().double()  # the f32 scale inferd keeps
    ok = s > 0
    s = torch.where(ok, s, torch.ones_like(s))
    z = torch.where(ok, torch.clamp(torch.round(-lo / s), 0, 15), torch.full_like(s, 8.0))
    q = torch.clamp(torch.round(x / s) + z, 0, 15)
    q = torch.where(ok, q, torch.full_like(q, 8.0))
    return (s * (q - z)).reshape(out, k).to(w.dtype)


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    model = transformers.LlamaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(rtn_q4(m.weight))
    tk = train_tiny_llama.tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    ids = tk.encode(open(os.path.join(d, "heldout.txt"), encoding="utf-8").read()).ids
    ppl, count = train_tiny_llama.perplexity(model, ids)
    print(json.dumps({"perplexity_int4_rtn": ppl, "scored_tokens": count}))


if __name__ == "__main__":
    main()
