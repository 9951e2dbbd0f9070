#!/usr/bin/env python3
"""m2m100_tokenizer: tiny M2M100Tokenizer directories and transformers 4.x's outputs for them.

M2M100Tokenizer (transformers 4.57; no fast version) segments text with
sentencepiece.bpe.model (sentencepiece's own BPE encoding), numbers the pieces with vocab.json
(fairseq's dictionary: <s> <pad> </s> <unk>, then the pieces in the dictionary's order, not
the model's), and adds one special token per language after the vocabulary, "__xx__" for the
100 codes of language_codes "m2m100" (or the 8 of "wmt21"), at len(vocab.json) + i. Its
inputs are "[__src__] $A </s>" (src_lang defaults to "en"); the translation pipeline's
forced BOS is the target code's id.

This trains a small BPE sentencepiece model with the sentencepiece trainer (deterministic:
one thread, the texts of tests/data/tokenizers.tar.xz's t5-unigram/refs-dev.json) and writes
vocab.json with the pieces in a fixed shuffled order (so an id is never the model's index),
for two directories: m2m100 (language_codes m2m100, src_lang unset, the codes listed as
additional_special_tokens as the Hub's facebook/m2m100_418M lists them: special tokens, split
out of the text and skipped when decoding) and m2m100-wmt21 (language_codes wmt21, src_lang
"de", no additional_special_tokens: transformers 4.57 then leaves the codes plain tokens,
found in the text only as sentencepiece pieces and kept when decoding).

refs.json of each: "encode": for every text (the refs-dev texts plus edge cases), the ids
(special tokens added), tokens and decoded text (skip_special_tokens both ways);
"translation": _build_translation_inputs' ids and forced_bos_token_id for a few
src_lang / tgt_lang pairs (the format of tokenizers-lang's refs).

  m2m100_tokenizer.py REFS_DEV_JSON OUT_DIR     (OUT_DIR/tokenizers-m2m100/NAME/...)
Run with transformers 4.x (tools/refgen/requirements-4x.txt); make_m2m100_fixtures.sh packs
tests/data/tokenizers-m2m100.tar.xz.
"""

import io
import json
import os
import random
import sys

import sentencepiece as spm
import transformers
from transformers import M2M100Tokenizer
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

EXTRA = [
    "",
    "   leading and   inner   spaces  ",
    "unknown chars: \u00df \u4e2d\u6587 \U0001F600 \u0416",
    "a literal </s> and <unk> and <pad> and <s> inside",
    "codes in the text: __fr__ and __de__ stay whole",
    "Tabs\tand\nnewlines",
    "ALL CAPS TEXT 12345",
    "caf\u00e9 na\u00efve \uff21\uff22\uff23 \u2460",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbb",
]
PAIRS = {"m2m100": [("en", "fr"), ("fr", "de"), ("zh", "en"), ("ast", "ilo")],
         "m2m100-wmt21": [("en", "de"), ("de", "ja"), ("ha", "is")]}


def main():
    refs_dev, out = sys.argv[1], sys.argv[2]
    texts = [r["text"] for r in json.load(open(refs_dev, encoding="utf-8"))]
    train = [t for t in texts if t.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(train), model_writer=model, model_type="bpe",
        vocab_size=400, hard_vocab_limit=False, num_threads=1, character_coverage=0.995,
        unk_id=3, bos_id=0, eos_id=2, pad_id=1, shuffle_input_sentence=False)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i))]
    random.Random(16).shuffle(pieces)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for p in pieces:
        vocab[p] = len(vocab)
    for name, codes, src in (("m2m100", "m2m100", None), ("m2m100-wmt21", "wmt21", "de")):
        d = os.path.join(out, "tokenizers-m2m100", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sentencepiece.bpe.model"), "wb") as f:
            f.write(model.getvalue())
        with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False, indent=2)
        cfg = {"tokenizer_class": "M2M100Tokenizer", "language_codes": codes,
               "num_madeup_words": 8, "model_max_length": 1024, "bos_token": "<s>",
               "eos_token": "</s>", "sep_token": "</s>", "pad_token": "<pad>",
               "unk_token": "<unk>"}
        if src:
            cfg["src_lang"] = src
        if codes == "m2m100":  # as the Hub's m2m100_418M lists them
            cfg["additional_special_tokens"] = [
                "__%s__" % c for c in FAIRSEQ_LANGUAGE_CODES[codes]]
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)
        tok = M2M100Tokenizer.from_pretrained(d)
        refs = []
        for t in texts + EXTRA:
            ids = tok(t)["input_ids"]
            refs.append({"text": t, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                         "decoded": tok.decode(ids, skip_special_tokens=True),
                         "decoded_special": tok.decode(ids, skip_special_tokens=False)})
        trans = []
        for s, t in PAIRS[name]:
            for text in texts[:5] + EXTRA[2:5]:
                x = tok._build_translation_inputs(text, return_tensors=None, src_lang=s,
                                                  tgt_lang=t)
                trans.append({"text": text, "src_lang": s, "tgt_lang": t,
                              "ids": list(x["input_ids"]),
                              "forced_bos_token_id": int(x["forced_bos_token_id"])})
        versions = {"transformers": transformers.__version__, "sentencepiece": spm.__version__}
        with open(os.path.join(d, "refs.json"), "w", encoding="utf-8") as f:
            json.dump({"versions": versions, "class": "M2M100Tokenizer", "encode": refs,
                       "translation": trans}, f, ensure_ascii=False, indent=1)
        print(f"{name}: {len(vocab)} + {len(tok.lang_token_to_id)} tokens, {len(refs)} texts, "
              f"{len(trans)} translations", file=sys.stderr)


if __name__ == "__main__":
    main()
