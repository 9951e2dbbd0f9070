#!/usr/bin/env python3
"""lang_pipelines: tiny random-weight translators whose tokenizers take language codes, and
transformers 4.x's translation pipeline outputs with src_lang / tgt_lang.

  s2s-nllb   M2M100ForConditionalGeneration (NLLB-200's architecture) with the nllb tokenizer
             of tokenizers-lang (lang_tokenizers.py): "[src] $A </s>", forced BOS tgt
  s2s-mbart-lang  MBartForConditionalGeneration with the mbart tokenizer: "$A </s> [src]"

Both are the shapes of bart_family.py's s2s-m2m100 / s2s-mbart (d_model 32, 2+2 layers) over
the tokenizer's whole vocabulary, ids as the real models have them (bos 0, pad 1, eos 2,
decoder start 2), torch.manual_seed(0). pipelines.json records, for each model, calls of
pipeline("translation", model=DIR) with src_lang / tgt_lang (greedy and beam settings,
return_tensors): input, parameters, output.

  lang_pipelines.py LANG_TOKENIZERS_DIR OUT_DIR   (OUT_DIR/models-lang/...)
Run with transformers 4.x; make_lang_fixtures.sh packs tests/data/models-issue16-lang.tar.xz.
"""

import json
import os
import shutil
import sys

import torch
import transformers
from transformers import (AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration,
                          MBartConfig, MBartForConditionalGeneration, pipeline)

# init_std 0.3: outputs that depend on the input and its language code
SHAPE = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
             decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=48,
             max_position_embeddings=128, scale_embedding=True, bos_token_id=0, pad_token_id=1,
             eos_token_id=2, decoder_start_token_id=2, dropout=0.0, attention_dropout=0.0,
             activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0, init_std=0.3)

MODELS = [
    ("s2s-nllb", "nllb", M2M100Config, M2M100ForConditionalGeneration, {"activation_function": "relu"},
     [("eng_Latn", "fra_Latn"), ("deu_Latn", "zho_Hans")]),
    ("s2s-mbart-lang", "mbart", MBartConfig, MBartForConditionalGeneration,
     {"activation_function": "gelu"}, [("en_XX", "ro_RO"), ("de_DE", "ja_XX")]),
]

INPUTS = ["Hello world!", "The quick brown fox jumps over the lazy dog."]
PARAMS = [{"max_new_tokens": 6, "num_beams": 1}, {"max_new_tokens": 6, "num_beams": 3},
          {"max_new_tokens": 5, "num_beams": 2, "return_tensors": True}]


def main():
    tok_root, out = sys.argv[1], sys.argv[2]
    refs = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__}}
    for name, tok_name, cfg_cls, model_cls, extra, pairs in MODELS:
        d = os.path.join(out, "models-lang", name)
        os.makedirs(d, exist_ok=True)
        tok = AutoTokenizer.from_pretrained(os.path.join(tok_root, tok_name))
        cfg = cfg_cls(vocab_size=len(tok), **SHAPE, **extra)
        torch.manual_seed(0)
        model = model_cls(cfg).eval()
        model.save_pretrained(d)
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(os.path.join(tok_root, tok_name, f), d)
        calls = []
        for s, t in pairs:
            pipe = pipeline("translation", model=d, src_lang=s, tgt_lang=t)
            for text in INPUTS:
                for p in PARAMS:
                    res = pipe(text, **p)
                    if p.get("return_tensors"):
                        res = [{k: [int(i) for i in v] for k, v in r.items()} for r in res]
                    calls.append({"input": text, "parameters": dict(p, src_lang=s, tgt_lang=t),
                                  "output": res})
        refs[name] = {"calls": calls}
        print(name, len(calls), file=sys.stderr)
    with open(os.path.join(out, "models-lang", "pipelines.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
