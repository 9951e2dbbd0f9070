#!/usr/bin/env python3
"""marian_tokenizer: a tiny MarianTokenizer directory and transformers 4.x's outputs for it.

MarianTokenizer (transformers 4.57, no fast version) segments the source text with
source.spm and numbers the pieces with the shared vocab.json; it decodes with target.spm.
This trains two small unigram sentencepiece models with the sentencepiece trainer
(deterministic: one thread, fixed seed texts): source.spm on the texts of
tests/data/tokenizers.tar.xz's t5-unigram/refs-dev.json, target.spm on the same texts with
every word reversed (so the target has pieces the source lacks), and writes vocab.json as
Marian's converter lays it out: </s> 0, <unk> 1, the source pieces, the target pieces not
already there, two language codes (>>fr<< >>de<<), <pad> last.

refs.json: for every text (the refs-dev texts plus edge cases: unknown characters, literal
special tokens, extra whitespace, a leading >>xx<< target-language code), MarianTokenizer's ids (with </s>), tokens and decoded
text (skip_special_tokens both ways) of the ids; and for decode-only checks the decoding
of id sequences made of target pieces.

  marian_tokenizer.py REFS_DEV_JSON OUT_DIR     (OUT_DIR/tokenizers-marian/marian/...)
Run with transformers 4.x (tools/refgen/requirements-4x.txt); make_marian_fixtures.sh packs
tests/data/tokenizers-marian.tar.xz.
"""

import io
import json
import os
import sys

import sentencepiece as spm
import transformers
from transformers import MarianTokenizer

EXTRA = [
    "",
    "   leading and   inner   spaces  ",
    "unknown chars: \u00df \u4e2d\u6587 \U0001F600 \u0416",
    "a literal </s> and <unk> and <pad> inside",
    "Tabs\tand\nnewlines",
    "ALL CAPS TEXT 12345",
    "caf\u00e9 na\u00efve \uff21\uff22\uff23 \u2460",
    ">>fr<< Hello world!",
    ">>de<<The quick brown fox",
]


def train(texts, path_prefix):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="unigram",
        vocab_size=300, hard_vocab_limit=False, num_threads=1, character_coverage=0.995,
        unk_id=0, bos_id=-1, eos_id=1, pad_id=-1, unk_piece="<unk>", eos_piece="</s>",
        seed_sentencepiece_size=10000, shuffle_input_sentence=False)
    with open(path_prefix, "wb") as f:
        f.write(model.getvalue())
    return spm.SentencePieceProcessor(model_file=path_prefix)


def main():
    refs_dev, out = sys.argv[1], sys.argv[2]
    d = os.path.join(out, "tokenizers-marian", "marian")
    os.makedirs(d, exist_ok=True)
    texts = [r["text"] for r in json.load(open(refs_dev, encoding="utf-8"))]
    src_texts = [t for t in texts if t.strip()]
    tgt_texts = [" ".join(w[::-1] for w in t.split()) for t in src_texts]
    src = train(src_texts, os.path.join(d, "source.spm"))
    tgt = train(tgt_texts, os.path.join(d, "target.spm"))
    vocab = {"</s>": 0, "<unk>": 1}
    for sp in (src, tgt):
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if not (sp.is_control(i) or sp.is_unknown(i)) and p not in vocab:
                vocab[p] = len(vocab)
    for code in (">>fr<<", ">>de<<"):
        vocab[code] = len(vocab)
    vocab["<pad>"] = len(vocab)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "xx",
                   "model_max_length": 512, "separate_vocabs": False}, f, indent=2)
    tok = MarianTokenizer.from_pretrained(d)
    refs = []
    for t in texts + EXTRA:
        ids = tok(t)["input_ids"]
        refs.append({"text": t, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                     "decoded": tok.decode(ids, skip_special_tokens=True),
                     "decoded_special": tok.decode(ids, skip_special_tokens=False)})
    # target-side sequences: the ids of the reversed texts' target pieces
    decodes = []
    for t in tgt_texts[:20]:
        ids = [vocab.get(p, 1) for p in tgt.encode(t, out_type=str)] + [0]
        decodes.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True),
                        "decoded_special": tok.decode(ids, skip_special_tokens=False)})
    versions = {"transformers": transformers.__version__, "sentencepiece": spm.__version__}
    with open(os.path.join(d, "refs.json"), "w", encoding="utf-8") as f:
        json.dump({"versions": versions, "encode": refs, "decode": decodes}, f,
                  ensure_ascii=False, indent=1)
    print(f"{len(vocab)} tokens, {len(refs)} texts, {len(decodes)} decodes", file=sys.stderr)
    separate(out, d, src, tgt, texts, tgt_texts, versions)


def separate(out, shared_dir, src, tgt, texts, tgt_texts, versions):
    """marian-separate: the same spm models with separate_vocabs: vocab.json numbers the
    source pieces, target_vocab.json the target pieces (</s> 0, <unk> 1, pieces, <pad> last
    in each); encoding uses the first, decoding the second."""
    import shutil
    d = os.path.join(out, "tokenizers-marian", "marian-separate")
    os.makedirs(d, exist_ok=True)
    for f in ("source.spm", "target.spm"):
        shutil.copy(os.path.join(shared_dir, f), d)
    vocabs = []
    for sp, name in ((src, "vocab.json"), (tgt, "target_vocab.json")):
        v = {"</s>": 0, "<unk>": 1}
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if not (sp.is_control(i) or sp.is_unknown(i)) and p not in v:
                v[p] = len(v)
        v["<pad>"] = len(v)
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            json.dump(v, f, ensure_ascii=False, indent=2)
        vocabs.append(v)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "xx",
                   "model_max_length": 512, "separate_vocabs": True}, f, indent=2)
    tok = MarianTokenizer.from_pretrained(d)
    assert tok.separate_vocabs
    refs = [{"text": t, "ids": tok(t)["input_ids"]} for t in texts + EXTRA]
    decodes = []
    for t in tgt_texts[:40]:
        ids = [vocabs[1].get(p, 1) for p in tgt.encode(t, out_type=str)] + [0]
        decodes.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True),
                        "decoded_special": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(d, "refs.json"), "w", encoding="utf-8") as f:
        json.dump({"versions": versions, "encode": refs, "decode": decodes}, f,
                  ensure_ascii=False, indent=1)
    print(f"separate: {len(vocabs[0])} + {len(vocabs[1])} tokens, {len(refs)} texts, "
          f"{len(decodes)} decodes", file=sys.stderr)


if __name__ == "__main__":
    main()
