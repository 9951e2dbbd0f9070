#!/usr/bin/env python3
"""beams: the issue-16 references, made with transformers 4.x (requirements-4x.txt): a tiny
random-weight BART (BartForConditionalGeneration) with the roberta fixture tokenizer, its
logits, greedy ids, beam search outputs and summarization pipeline outputs, and the beam
search outputs of the existing llama-lm and t5-s2s fixtures (tests/data/models-other.tar.xz).

Usage: beams.py TOKENIZERS_DIR MODELS_DIR OUT_DIR
  TOKENIZERS_DIR  an unpacked tests/data/tokenizers.tar.xz ("tokenizers/" inside it)
  MODELS_DIR      an unpacked tests/data/models-other.tar.xz ("models/" inside it)
  OUT_DIR         receives models/bart-s2s/ and beams/{llama-lm,t5-s2s,bart-s2s}.json
See README.md (make_beam_fixtures.sh packs tests/data/models-issue16-beams.tar.xz).
"""

import json
import math
import os
import shutil
import sys
import zlib

import numpy as np
import torch
import transformers
from transformers import (AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer,
                          BartConfig, BartForConditionalGeneration, GenerationConfig, pipeline)

SEED = 16
MAX_NEW = 12
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Once upon a time",
    "Paris is the capital of France and its largest city.",
]
# every setting is run on every input; settings name only what differs from plain beam search
# (num_beams 4, length_penalty 1.0, early_stopping false, max_new_tokens MAX_NEW). "eos": use the
# input's most frequent greedy token as eos_token_id, so that hypotheses end before max length
# on random weights (the model's own eos is rarely chosen)
SETTINGS = [
    {"name": "beams2", "num_beams": 2},
    {"name": "beams4", "num_beams": 4},
    {"name": "lp2", "num_beams": 4, "length_penalty": 2.0},
    {"name": "early", "num_beams": 4, "early_stopping": True},
    {"name": "never", "num_beams": 4, "early_stopping": "never"},
    {"name": "ngram3", "num_beams": 4, "no_repeat_ngram_size": 3},
    {"name": "ret2", "num_beams": 4, "num_return_sequences": 2},
    {"name": "rep13", "num_beams": 3, "repetition_penalty": 1.3},
    {"name": "eos-beams4", "num_beams": 4, "eos": True},
    {"name": "eos-early", "num_beams": 4, "eos": True, "early_stopping": True},
    {"name": "eos-never-lp2", "num_beams": 4, "eos": True, "early_stopping": "never",
     "length_penalty": 2.0},
    {"name": "eos-lp0-ret3", "num_beams": 3, "eos": True, "length_penalty": 0.0,
     "num_return_sequences": 3},
    {"name": "eos-min8", "num_beams": 4, "eos": True, "min_length": 8},
    {"name": "eos-ngram2-ret2", "num_beams": 4, "eos": True, "no_repeat_ngram_size": 2,
     "num_return_sequences": 2},
    {"name": "forced", "num_beams": 4, "forced_bos_token_id": 5, "forced_eos_token_id": 6},
]


def fl(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        return [fl(v) for v in x] if x.ndim else fl(float(x))
    if isinstance(x, (list, tuple)):
        return [fl(v) for v in x]
    return float("%.7g" % float(x))


def grid(x, std, coarse=False):
    """Normal draws on a power-of-two grid (compress well, still random)."""
    step = 2.0 ** round(math.log2(std if coarse else std / 2))
    lim = round(4 * std / step)
    return torch.clamp(torch.round(x / step), -lim, lim) * step


@torch.no_grad()
def randomize(model):
    for name, p in model.named_parameters():
        gen = torch.Generator().manual_seed(zlib.crc32(("%d:%s" % (SEED, name)).encode()))
        r = torch.randn(p.shape, generator=gen)
        if p.dim() == 1:
            noise = grid(r, 0.1)
            p.copy_(1 + noise if torch.all(p == 1) else noise)
        elif "embed" in name:
            p.copy_(grid(r, 1.0, coarse=True))
        else:
            p.copy_(grid(r, 1.0 / math.sqrt(p.shape[-1])))
    gen = torch.Generator().manual_seed(SEED)
    bias = grid(torch.randn(model.final_logits_bias.shape, generator=gen), 0.5)
    model.final_logits_bias.copy_(bias)


def build_bart(tok_dir, out):
    """bart-s2s: 2+2 layers, d_model 32, learned positions (offset 2), layernorm_embedding,
    post-norm, scale_embedding true (as distilbart / bart-large-cnn do not; here to exercise
    it), final_logits_bias, tied head; generation_config.json like distilbart-cnn's."""
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                     decoder_ffn_dim=64, max_position_embeddings=128, scale_embedding=True,
                     activation_function="gelu", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                     decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
                     tie_word_embeddings=True)
    torch.manual_seed(SEED)
    model = BartForConditionalGeneration(cfg).eval()
    randomize(model)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    for f in os.listdir(tok_dir):  # the fixture's own tokenizer files, as inferd reads them
        shutil.copy(os.path.join(tok_dir, f), out)
    for f in ("refs-dev.json", "vocab.json", "merges.txt", "special_tokens_map.json"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    gc = GenerationConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1,
                          decoder_start_token_id=2, forced_bos_token_id=0,
                          forced_eos_token_id=2, num_beams=4, length_penalty=2.0,
                          max_length=20, min_length=5, no_repeat_ngram_size=3,
                          early_stopping=True)
    gc.save_pretrained(out)
    return AutoModelForSeq2SeqLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)


def plain_config(model):
    """The model's generation config without the beam defaults a fixture may carry, so that
    each setting sets exactly what it names."""
    gc = GenerationConfig.from_model_config(model.config)
    for k in ("num_beams", "length_penalty", "min_length", "no_repeat_ngram_size",
              "early_stopping", "forced_bos_token_id", "forced_eos_token_id", "max_length"):
        setattr(gc, k, GenerationConfig().__getattribute__(k))
    gc.forced_bos_token_id = None
    gc.forced_eos_token_id = None
    return gc


@torch.no_grad()
def record(model, inputs, name, enc_dec):
    """inputs: (text, input ids) pairs."""
    out = {"model": name, "max_new_tokens": MAX_NEW, "inputs": []}
    for text, input_ids in inputs:
        ids = torch.tensor([input_ids])
        base = plain_config(model)
        g = model.generate(ids, generation_config=base, max_new_tokens=MAX_NEW, do_sample=False,
                           use_model_defaults=False,
                           num_beams=1)
        gen = g[0, (1 if enc_dec else ids.shape[1]):].tolist()
        item = {"text": text, "input_ids": ids[0].tolist(), "greedy_ids": gen, "beams": []}
        if enc_dec:
            start = torch.tensor([[model.config.decoder_start_token_id]])
            lg = model(input_ids=ids, decoder_input_ids=torch.cat([start, g[:, 1:4]], 1)).logits
            item["decoder_input_ids"] = [model.config.decoder_start_token_id] + g[0, 1:4].tolist()
            item["logits_rows"] = [fl(r[:64]) for r in lg[0]]  # first 64 of each row
            item["logits_top"] = [{"ids": r.topk(8).indices.tolist(), "values": fl(r.topk(8).values)}
                                  for r in lg[0]]
        eos_tok = max(set(gen), key=gen.count)
        for s in SETTINGS:
            kw = {k: v for k, v in s.items() if k not in ("name", "eos")}
            gc = plain_config(model)
            if s.get("eos"):
                gc.eos_token_id = eos_tok
            r = model.generate(ids, generation_config=gc, max_new_tokens=MAX_NEW, do_sample=False,
                               use_model_defaults=False,
                               return_dict_in_generate=True, output_scores=True, **kw)
            seqs = r.sequences[:, (0 if enc_dec else ids.shape[1]):]
            item["beams"].append({
                "setting": s["name"], "params": kw,
                "eos_token_id": eos_tok if s.get("eos") else gc.eos_token_id,
                "pad_token_id": gc.pad_token_id,
                "sequences": seqs.tolist(),
                "sequences_scores": fl(r.sequences_scores)})
        out["inputs"].append(item)
    return out


def summarization(model, tok):
    pipe = pipeline("summarization", model=model, tokenizer=tok)
    res = []
    for text in TEXTS:
        # transformers 4.57's pipelines default max_new_tokens to 256 when the model's generation
        # config leaves max_length at its default: name the length explicitly
        for params in ({"max_new_tokens": 16}, {"num_beams": 2, "max_new_tokens": 10, "min_length": 3}):
            o = pipe(text, **params)
            res.append({"input": text, "parameters": params, "output": o})
    return res


def main():
    tok_root, models_root, out_root = sys.argv[1:4]
    os.makedirs(os.path.join(out_root, "beams"), exist_ok=True)
    bart_dir = os.path.join(out_root, "models", "bart-s2s")
    os.makedirs(bart_dir, exist_ok=True)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "generator": "tools/refgen/beams.py", "seed": SEED}
    bart, btok = build_bart(os.path.join(tok_root, "roberta"), bart_dir)
    inputs = [(t, btok(t).input_ids) for t in TEXTS]
    refs = record(bart, inputs, "bart-s2s", True)
    refs["versions"] = versions
    refs["pipeline"] = summarization(bart, btok)
    json.dump(refs, open(os.path.join(out_root, "beams", "bart-s2s.json"), "w"), indent=1)
    for name, cls, enc_dec in (("t5-s2s", AutoModelForSeq2SeqLM, True),
                               ("llama-lm", AutoModelForCausalLM, False)):
        d = os.path.join(models_root, "models", name)
        # their inputs as refs-dev.json records them (transformers 4 cannot read the
        # tokenizer_config.json transformers 5 wrote)
        gens = json.load(open(os.path.join(d, "refs-dev.json")))["generations"]
        inputs = [(g.get("input", g.get("prompt")), g["input_ids"]) for g in gens[:3]]
        model = cls.from_pretrained(d).eval()
        if name == "t5-s2s":
            # the fixture was made with transformers 5 and "scale_decoder_outputs": false;
            # 4.x rescales a tied T5's decoder output by d_model^-0.5 whenever
            # tie_word_embeddings is set: unset it (the head keeps the shared weights)
            model.config.tie_word_embeddings = False
        refs = record(model, inputs, name, enc_dec)
        refs["versions"] = versions
        json.dump(refs, open(os.path.join(out_root, "beams", name + ".json"), "w"), indent=1)


if __name__ == "__main__":
    main()
