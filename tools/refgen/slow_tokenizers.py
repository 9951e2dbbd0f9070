#!/usr/bin/env python3
"""slow_tokenizers: slow-tokenizer fixtures (no tokenizer.json) and their references.

For each fixture tokenizer of tests/data/tokenizers.tar.xz that has a slow form, writes the
files an old Hub repo ships instead of tokenizer.json, derived from the fixture's
tokenizer.json (the same vocabulary and merges):

  bert-uncased   vocab.txt                     (BertTokenizer)
  gpt2, roberta  vocab.json + merges.txt       (GPT2Tokenizer, RobertaTokenizer)

plus tokenizer_config.json (the fixture's, without the keys transformers 5 adds when it saves:
backend, is_local, local_files_only, added_tokens_decoder) and special_tokens_map.json. Then
loads the directory with AutoTokenizer (transformers builds the fast tokenizer from the slow
files) and records, for every text of the fixture's refs-dev.json, the same entry shape:
text, ids, tokens, offsets, ids_no_special, decoded (skip_special_tokens). pairs-dev.json
holds 12 text pairs (consecutive refs texts) without truncation: text, pair, ids, type_ids,
offsets. (Overflow windows are not recorded: tokenizers 0.23.3, in the venv, windows the
whole text where 0.23.2, which made tokenizers.tar.xz and which inferd copies, stopped early;
the existing bert-uncased pairs-dev.json covers them.)

  slow_tokenizers.py TOKENIZERS_DIR OUT_DIR      (OUT_DIR/tokenizers-slow/NAME/...)

make_slow_fixtures.sh runs it on the unpacked archive and packs
tests/data/tokenizers-slow.tar.xz.
"""

import json
import os
import sys

import tokenizers
import transformers
from transformers import AutoTokenizer

SAVED_KEYS = ("backend", "is_local", "local_files_only", "added_tokens_decoder")
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token")


def write_json(path, obj, indent=2):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def by_id(vocab):
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def write_wordpiece(tj, out):
    """vocab.txt: one token a line, the line number is the id (added tokens included)."""
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    toks = by_id(vocab)
    assert [vocab[t] for t in toks] == list(range(len(toks))), "vocab ids must be dense"
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in toks))


def write_bpe(tj, out):
    """vocab.json (added tokens included, as GPT-2's is) and merges.txt with its #version line."""
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    write_json(os.path.join(out, "vocab.json"), {t: vocab[t] for t in by_id(vocab)})
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(m + "\n" for m in merges))


WRITERS = {"bert-uncased": write_wordpiece, "gpt2": write_bpe, "roberta": write_bpe}


def slow_files(src, out):
    tj = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    cfg = json.load(open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8"))
    cfg = {k: v for k, v in cfg.items() if k not in SAVED_KEYS}
    WRITERS[os.path.basename(src)](tj, out)
    write_json(os.path.join(out, "tokenizer_config.json"), cfg)
    write_json(os.path.join(out, "special_tokens_map.json"),
               {k: cfg[k] for k in SPECIAL_KEYS if cfg.get(k) is not None})


def entry(tok, text):
    enc = tok(text, return_offsets_mapping=True)
    ids = enc["input_ids"]
    return {
        "text": text,
        "ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
        "offsets": [list(o) for o in enc["offset_mapping"]],
        "ids_no_special": tok(text, add_special_tokens=False)["input_ids"],
        "decoded": tok.decode(ids, skip_special_tokens=True),
    }


def pair_entry(tok, text, pair):
    """A text pair without truncation: the pair template (type ids, offsets) of the converter."""
    enc = tok(text, pair, return_offsets_mapping=True)
    return {"text": text, "pair": pair, "ids": enc["input_ids"],
            "type_ids": enc.encodings[0].type_ids,
            "offsets": [list(o) for o in enc["offset_mapping"]]}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    src_root, out_root = argv[1], os.path.join(argv[2], "tokenizers-slow")
    names = argv[3:] or sorted(WRITERS)
    for name in names:
        src, out = os.path.join(src_root, name), os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        slow_files(src, out)
        tok = AutoTokenizer.from_pretrained(out)
        assert not os.path.exists(os.path.join(out, "tokenizer.json"))
        refs = json.load(open(os.path.join(src, "refs-dev.json"), encoding="utf-8"))
        mine = [entry(tok, r["text"]) for r in refs]
        write_json(os.path.join(out, "refs-dev.json"), mine, None)
        same = sum(1 for a, b in zip(mine, refs) if all(a[k] == b[k] for k in a))
        print("%-14s %s: %d entries, %d equal to the tokenizer.json fixture's" %
              (name, type(tok).__name__, len(mine), same))
        texts = [r["text"] for r in refs[:24]]
        write_json(os.path.join(out, "pairs-dev.json"),
                   [pair_entry(tok, a, b) for a, b in zip(texts[0::2], texts[1::2])], None)
    write_json(os.path.join(out_root, "versions.json"),
               {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "python": sys.version.split()[0]})


if __name__ == "__main__":
    main(sys.argv)
