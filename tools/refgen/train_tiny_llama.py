"""train_tiny_llama.py: a small LLaMA-architecture language model trained for a few CPU minutes
on local English prose, so that perplexity means something (bench/run_perplexity.sh; a random-
weight model's perplexity is noise and the Hub, where trained models live, is out of reach).

Text: Vim's user manual, /usr/share/vim/vim90/doc/usr_*.txt (Debian's vim-runtime, ~640 KB of
tutorial prose in English under the Vim license, which allows redistribution). It is the
largest body of ordinary English sentences installed on the build image (the rest of
/usr/share/doc is changelogs, Python's own sources are mostly code). The files are joined in
name order with blank lines; the first 90% of characters (cut at a line start) is the training
split, the rest the held-out split.

Writes into OUT (never committed; bench/run_perplexity.sh puts it in the build directory):
  tokenizer.json, tokenizer_config.json  a byte-level BPE (tokenizers, vocabulary 4096) trained
                                         on the training split only
  config.json, model.safetensors         LlamaForCausalLM, fp32
  train.txt, heldout.txt                 the two splits
  reference.json                         transformers' perplexity on heldout.txt (fp32, sliding
                                         window as the transformers perplexity guide: windows of
                                         MAX_LENGTH tokens every STRIDE tokens, each token scored
                                         once with the longest context its window gives), the
                                         token count and the versions used

Everything is seeded and runs on one thread, so a rerun gives the same model.
usage: /work/venv-refgen/bin/python tools/refgen/train_tiny_llama.py OUT [--steps N]
"""

import argparse
import glob
import json
import math
import os
import random
import sys
import time

import safetensors
import tokenizers
import torch
import transformers
from tokenizers import decoders, models, pre_tokenizers, trainers

SOURCE = "/usr/share/vim/vim90/doc/usr_*.txt"
VOCAB = 4096
MAX_LENGTH = 256  # the model's positions and the perplexity window
STRIDE = 128
SEQ = 128  # training sequence length
BATCH = 16
SEED = 18


def read_splits():
    files = sorted(glob.glob(SOURCE))
    if not files:
        sys.exit("train_tiny_llama: no %s (Debian package vim-runtime)" % SOURCE)
    text = "\n\n".join(open(f, encoding="utf-8", errors="strict").read() for f in files)
    cut = text.index("\n", int(len(text) * 0.9)) + 1
    return text[:cut], text[cut:], files


def train_tokenizer(train_text):
    tk = tokenizers.Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator([train_text], trainer=trainer)
    return tk


def make_model():
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_LENGTH,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.LlamaForCausalLM(cfg)


def train(model, ids, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )
    gen = torch.Generator().manual_seed(SEED)
    data = torch.tensor(ids, dtype=torch.long)
    model.train()
    t0 = time.time()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - SEQ - 1, (BATCH,), generator=gen)
        batch = torch.stack([data[s : s + SEQ] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print("step %d/%d loss %.4f (%.0f s)" % (step, steps, loss.item(), time.time() - t0),
                  file=sys.stderr, flush=True)
    model.eval()


@torch.no_grad()
def perplexity(model, ids):
    """Exact mean NLL over every token after the first: windows of MAX_LENGTH starting every
    STRIDE tokens; a window scores only the tokens the previous one did not (the guide's
    target masking), counted exactly."""
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), STRIDE):
        end = min(begin + MAX_LENGTH, len(ids))
        x = torch.tensor([ids[begin:end]])
        logp = torch.log_softmax(model(input_ids=x).logits[0].double(), dim=-1)
        first = max(prev_end, begin + 1)  # the first position scored in this window
        for pos in range(first, end):
            nll -= logp[pos - begin - 1, ids[pos]].item()
            count += 1
        prev_end = end
        if end == len(ids):
            break
    return math.exp(nll / count), count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=450)
    a = ap.parse_args()
    torch.manual_seed(SEED)
    random.seed(SEED)
    torch.set_num_threads(1)
    train_text, held_text, files = read_splits()
    tk = train_tokenizer(train_text)
    train_ids = tk.encode(train_text).ids
    held_ids = tk.encode(held_text).ids
    print("train %d chars %d tokens, held-out %d chars %d tokens" %
          (len(train_text), len(train_ids), len(held_text), len(held_ids)), file=sys.stderr)
    model = make_model()
    t0 = time.time()
    train(model, train_ids, a.steps)
    train_s = time.time() - t0
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    tk.save(os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                   "bos_token": "<|endoftext|>", "model_max_length": MAX_LENGTH}, f, indent=1)
    with open(os.path.join(a.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write(train_text)
    with open(os.path.join(a.out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)
    ppl, count = perplexity(model, held_ids)
    ref = {
        "source": SOURCE, "files": len(files), "heldout_chars": len(held_text),
        "heldout_tokens": len(held_ids), "scored_tokens": count, "max_length": MAX_LENGTH,
        "stride": STRIDE, "steps": a.steps, "batch": BATCH, "seq": SEQ, "seed": SEED,
        "train_seconds": round(train_s, 1), "perplexity_fp32": ppl,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__},
    }
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(json.dumps(ref))


if __name__ == "__main__":
    main()
