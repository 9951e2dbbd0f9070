"""make_bin_fixtures.py: the pytorch_model.bin fixtures (tests/data/models-bin.tar.xz), written
by real torch.save from the safetensors fixture models, for the loader's torch-checkpoint
reader (engine/loader/torch_bin.c). Only the weight files go into the archive; the tests copy
config.json and the tokenizer from the original fixture directory.

  bert-seqcls-bin      pytorch_model.bin, float32: same logits as the original
  bert-seqcls-sharded  pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json
  t5-s2s-bin           float32 state_dict as T5 has it: shared.weight and both embed_tokens
                       are one tensor (tied embeddings, one storage, three names)
  t5-s2s-fp16/-bf16    float16 / bfloat16 copies
  llama-lm-bf16        bfloat16; embed_tokens and lm_head are two offset views of one storage,
                       q_proj weights are transposed (strided) views

Usage: make_bin_fixtures.py MODELS_DIR OUT_DIR (MODELS_DIR holds bert-seqcls, t5-s2s, llama-lm
as unpacked from models-bert.tar.xz and models-other.tar.xz). The Python is
/work/venv-refgen/bin/python (requirements.txt: torch 2.11)."""
import json
import os
import sys

import torch
from safetensors.torch import load_file


def load(models, name):
    return load_file(os.path.join(models, name, "model.safetensors"))


def save(sd, out, name, fname="pytorch_model.bin"):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.save(sd, os.path.join(d, fname))


def bert(models, out):
    sd = load(models, "bert-seqcls")
    save(dict(sd), out, "bert-seqcls-bin")
    names = sorted(sd)
    half = len(names) // 2
    shards = [names[:half], names[half:]]
    wm = {}
    for i, part in enumerate(shards):
        fname = "pytorch_model-%05d-of-%05d.bin" % (i + 1, len(shards))
        save({n: sd[n] for n in part}, out, "bert-seqcls-sharded", fname)
        wm.update({n: fname for n in part})
    idx = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
           "weight_map": wm}
    with open(os.path.join(out, "bert-seqcls-sharded", "pytorch_model.bin.index.json"), "w") as f:
        json.dump(idx, f, indent=2)


def t5(models, out):
    sd = load(models, "t5-s2s")
    shared = sd["shared.weight"]
    tied = dict(sd)
    tied["encoder.embed_tokens.weight"] = shared
    tied["decoder.embed_tokens.weight"] = shared
    save(tied, out, "t5-s2s-bin")
    save({n: t.to(torch.float16) for n, t in sd.items()}, out, "t5-s2s-fp16")
    save({n: t.to(torch.bfloat16) for n, t in sd.items()}, out, "t5-s2s-bf16")


def llama(models, out):
    sd = {n: t.to(torch.bfloat16) for n, t in load(models, "llama-lm").items()}
    emb, head = sd["model.embed_tokens.weight"], sd["lm_head.weight"]
    both = torch.cat([emb, head])  # one storage, two offset views
    sd["model.embed_tokens.weight"] = both[: emb.shape[0]]
    sd["lm_head.weight"] = both[emb.shape[0]:]
    for n in list(sd):
        if n.endswith("q_proj.weight"):  # stride (1, rows): not contiguous
            sd[n] = sd[n].t().contiguous().t()
    assert not sd["model.layers.0.self_attn.q_proj.weight"].is_contiguous()
    save(sd, out, "llama-lm-bf16")


if __name__ == "__main__":
    torch.manual_seed(0)
    bert(sys.argv[1], sys.argv[2])
    t5(sys.argv[1], sys.argv[2])
    llama(sys.argv[1], sys.argv[2])
