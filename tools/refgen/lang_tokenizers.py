#!/usr/bin/env python3
"""lang_tokenizers: tokenizers with language codes (NLLB, mBART, mBART-50) and transformers
4.x's translation inputs for them.

Each is built from the xlmr-unigram fixture of tests/data/tokenizers.tar.xz (the fairseq
layout these models share) by the fast class itself, which adds its language codes as
special tokens, and saved with save_pretrained (tokenizer.json + tokenizer_config.json):

  nllb          NllbTokenizerFast (src_lang eng_Latn): "[src] $A </s>"
  nllb-legacy   the same with legacy_behaviour: "$A </s> [src]"
  mbart         MBartTokenizerFast (src_lang en_XX): "$A </s> [src]"
  mbart50       MBart50TokenizerFast (src_lang en_XX): "[src] $A </s>"

refs.json per directory: for texts x (src_lang, tgt_lang) pairs, what TranslationPipeline's
preprocess gets from tokenizer._build_translation_inputs: input_ids and forced_bos_token_id.

  lang_tokenizers.py XLMR_TOKENIZER_DIR OUT_DIR   (OUT_DIR/tokenizers-lang/NAME/...)
Run with transformers 4.x (tools/refgen/requirements-4x.txt); make_lang_fixtures.sh packs
tests/data/tokenizers-lang.tar.xz.
"""

import json
import os
import sys

import tokenizers
import transformers
from transformers import MBart50TokenizerFast, MBartTokenizerFast, NllbTokenizerFast

TEXTS = ["Hello world!", "The quick brown fox jumps over the lazy dog.", "",
         "  spaces   and\ttabs ", "caf\u00e9 \u4e2d\u6587 </s> <unk>"]

KINDS = [
    ("nllb", NllbTokenizerFast, {"src_lang": "eng_Latn", "tgt_lang": "fra_Latn"},
     [("eng_Latn", "fra_Latn"), ("deu_Latn", "eng_Latn"), ("zho_Hans", "arb_Arab")]),
    ("nllb-legacy", NllbTokenizerFast,
     {"src_lang": "eng_Latn", "tgt_lang": "fra_Latn", "legacy_behaviour": True},
     [("eng_Latn", "fra_Latn"), ("deu_Latn", "eng_Latn")]),
    ("mbart", MBartTokenizerFast, {"src_lang": "en_XX", "tgt_lang": "ro_RO"},
     [("en_XX", "ro_RO"), ("de_DE", "en_XX"), ("ja_XX", "fr_XX")]),
    ("mbart50", MBart50TokenizerFast, {"src_lang": "en_XX", "tgt_lang": "ro_RO"},
     [("en_XX", "ro_RO"), ("de_DE", "en_XX"), ("sl_SI", "fr_XX")]),
]


def main():
    src_dir, out = sys.argv[1], sys.argv[2]
    for name, cls, kwargs, pairs in KINDS:
        d = os.path.join(out, "tokenizers-lang", name)
        tok = cls(tokenizer_file=os.path.join(src_dir, "tokenizer.json"), **kwargs)
        tok.save_pretrained(d)
        tok = cls.from_pretrained(d)
        refs = []
        for s, t in pairs:
            for text in TEXTS:
                x = tok._build_translation_inputs(text, return_tensors=None, src_lang=s, tgt_lang=t)
                refs.append({"text": text, "src_lang": s, "tgt_lang": t,
                             "ids": list(x["input_ids"]),
                             "forced_bos_token_id": int(x["forced_bos_token_id"])})
        versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
        with open(os.path.join(d, "refs.json"), "w", encoding="utf-8") as f:
            json.dump({"versions": versions, "class": cls.__name__, "translation": refs}, f,
                      ensure_ascii=False, indent=1)
        print(name, len(refs), file=sys.stderr)


if __name__ == "__main__":
    main()
