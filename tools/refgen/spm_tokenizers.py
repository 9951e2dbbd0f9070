#!/usr/bin/env python3
"""spm_tokenizers: sentencepiece-model fixtures (no tokenizer.json) and their references.

Writes, for five families, the files an old Hub repo ships instead of tokenizer.json: a
sentencepiece model (ModelProto, built with sentencepiece's own sentencepiece_model_pb2 from
the vocabulary, scores and precompiled charsmap of a fixture tokenizer.json of
tests/data/tokenizers.tar.xz), tokenizer_config.json (tokenizer_class and the options of the
real repo's config) and special_tokens_map.json:

  t5          spiece.model              unigram (t5-unigram)     T5Tokenizer
  albert      spiece.model              unigram (t5-unigram)     AlbertTokenizer
  xlmr        sentencepiece.bpe.model   unigram (xlmr-unigram)   XLMRobertaTokenizer
  deberta-v2  spm.model                 unigram (t5-unigram)     DebertaV2Tokenizer
  llama       tokenizer.model           BPE, byte fallback (llama2)  LlamaTokenizer
  llama-legacy  the same with "legacy": true and add_prefix_space false
  albert-cased  ALBERT with keep_accents and without do_lower_case ("...Fast" class name)
  t5-user       T5 with a user-defined piece <html>, no tokenizer_class: transformers takes
                the class from config.json's model_type, inferd from the file name
  deberta-v2-punct  DeBERTa-v2 with split_by_punct, do_lower_case, add_prefix_space false

Each directory is loaded with sentencepiece itself (SentencePieceProcessor: the file must be a
valid model) and with AutoTokenizer (transformers builds the fast tokenizer from the .model),
and records for every text of the fixture's refs-dev.json and one text of special and added
tokens (SPECIALS_TEXT): text, ids, tokens, offsets,
ids_no_special, decoded (skip_special_tokens), and encoding_tokens: the fast Encoding's own
token strings, which differ from convert_ids_to_tokens where an lstrip added token's match
takes the space before it (' <mask>') and where Unigram gives an unknown piece's text; pairs-dev.json holds 12 text pairs: text, pair,
ids, type_ids, offsets. spm-dev.json records sentencepiece's own encoding of each text
(pieces and ids, no special tokens) for comparison.

  spm_tokenizers.py TOKENIZERS_DIR OUT_DIR [NAME ...]     (OUT_DIR/tokenizers-spm/NAME/...)
  spm_tokenizers.py --slow OUT_DIR                         (with transformers 4.x)
  spm_tokenizers.py --seeds TOKENIZERS_DIR CORPUS_DIR      (tests/fuzz/corpus/spm)

transformers 5 has no sentencepiece-backed classes any more (use_fast=False gives the same
tokenizer), so --slow, run with transformers 4.x (tools/refgen/requirements-4x.txt), adds
slow-4x.json to each directory: the slow sentencepiece tokenizer's (use_fast=False) ids,
tokens and decoded text for the same texts, and prints how many equal transformers 5's.

make_spm_fixtures.sh runs it on the unpacked archive and packs tests/data/tokenizers-spm.tar.xz.
"""

import json
import os
import sys

import google.protobuf
import sentencepiece
import tokenizers
import transformers
from sentencepiece import sentencepiece_model_pb2 as pb
from transformers import AutoTokenizer

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
UNIGRAM, BPE = 1, 2


def write_json(path, obj, indent=2):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def load(src, name):
    return json.load(open(os.path.join(src, name, "tokenizer.json"), encoding="utf-8"))


def charsmap(tj):
    import base64
    n = tj["normalizer"]
    return base64.b64decode(n["precompiled_charsmap"]) if n and n["type"] == "Precompiled" else b""


def model_proto(pieces, model_type, ids, cmap, byte_fallback=False, remove_extra_ws=True,
                name="nmt_nfkc"):
    """pieces: [(piece, score, type)]; ids: unk/bos/eos/pad ids (-1 = none)."""
    m = pb.ModelProto()
    for p, s, t in pieces:
        sp = m.pieces.add()
        sp.piece, sp.score, sp.type = p, s, t
    ts = m.trainer_spec
    ts.model_type = model_type
    ts.vocab_size = len(pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = ids
    ts.byte_fallback = byte_fallback
    for key, i in zip(("unk_piece", "bos_piece", "eos_piece", "pad_piece"), ids):
        if i >= 0:
            setattr(ts, key, pieces[i][0])
    ns = m.normalizer_spec
    ns.name = name
    if cmap:
        ns.precompiled_charsmap = cmap
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = remove_extra_ws
    ns.escape_whitespaces = True
    return m.SerializeToString()


def t5_normals(src):
    """The t5-unigram fixture's scored pieces after its three specials, before the sentinels."""
    tj = load(src, "t5-unigram")
    return [(p, s, NORMAL) for p, s in tj["model"]["vocab"][3:3000]], charsmap(tj)


def t5_model(src):
    normals, cmap = t5_normals(src)
    pieces = [("<pad>", 0.0, CONTROL), ("</s>", 0.0, CONTROL), ("<unk>", 0.0, UNKNOWN)] + normals
    return model_proto(pieces, UNIGRAM, (2, -1, 1, 0), cmap)


def t5_user_model(src):
    """T5's model with a user-defined piece after the others (an added token, not special)."""
    normals, cmap = t5_normals(src)
    pieces = [("<pad>", 0.0, CONTROL), ("</s>", 0.0, CONTROL), ("<unk>", 0.0, UNKNOWN)] + normals
    return model_proto(pieces + [("<html>", 0.0, USER_DEFINED)], UNIGRAM, (2, -1, 1, 0), cmap)


def albert_model(src):
    normals, cmap = t5_normals(src)
    pieces = [("<pad>", 0.0, CONTROL), ("<unk>", 0.0, UNKNOWN), ("[CLS]", 0.0, CONTROL),
              ("[SEP]", 0.0, CONTROL), ("[MASK]", 0.0, CONTROL)] + normals
    return model_proto(pieces, UNIGRAM, (1, 2, 3, 0), cmap)


def deberta_model(src):
    normals, cmap = t5_normals(src)
    pieces = [("[PAD]", 0.0, CONTROL), ("[CLS]", 0.0, CONTROL), ("[SEP]", 0.0, CONTROL),
              ("[UNK]", 0.0, UNKNOWN)] + normals
    return model_proto(pieces, UNIGRAM, (3, 1, 2, 0), cmap)


def xlmr_model(src):
    """The fairseq layout's source: <unk> <s> </s> then the pieces (ids shift by one in HF)."""
    tj = load(src, "xlmr-unigram")
    normals = [(p, s, NORMAL) for p, s in tj["model"]["vocab"][5:-1]]
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)] + normals
    return model_proto(pieces, UNIGRAM, (0, 1, 2, -1), charsmap(tj))


def llama_model(src):
    """Llama 2's layout: <unk> <s> </s>, 256 byte pieces, then the BPE pieces scored by rank."""
    tj = load(src, "llama2")
    pieces = []
    for p, i in sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if i < 3:
            pieces.append((p, 0.0, (UNKNOWN, CONTROL, CONTROL)[i]))
        elif p.startswith("<0x") and len(p) == 6:
            pieces.append((p, 0.0, BYTE))
        else:
            pieces.append((p, float(-(i - 259)), NORMAL))
    return model_proto(pieces, BPE, (0, 1, 2, -1), b"", byte_fallback=True,
                       remove_extra_ws=False, name="identity")


EXTRA = ["<extra_id_%d>" % i for i in range(10)]
FAMILIES = {
    "t5": ("spiece.model", t5_model, {
        "tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "extra_ids": 10, "additional_special_tokens": EXTRA,
        "model_max_length": 512}, "t5-unigram"),
    "albert": ("spiece.model", albert_model, {
        "tokenizer_class": "AlbertTokenizer", "do_lower_case": True, "keep_accents": False,
        "remove_space": True, "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>",
        "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]",
        "mask_token": {"content": "[MASK]", "lstrip": True, "rstrip": False,
                       "normalized": False, "single_word": False},
        "model_max_length": 512}, "t5-unigram"),
    "albert-cased": ("spiece.model", albert_model, {
        "tokenizer_class": "AlbertTokenizerFast", "do_lower_case": False, "keep_accents": True,
        "unk_token": "<unk>", "model_max_length": 512}, "t5-unigram"),
    "t5-user": ("spiece.model", t5_user_model, {"extra_ids": 3, "config.json": {
        "model_type": "t5"}}, "t5-unigram"),
    "deberta-v2-punct": ("spm.model", deberta_model, {
        "tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": True, "split_by_punct": True,
        "add_prefix_space": False}, "t5-unigram"),
    "xlmr": ("sentencepiece.bpe.model", xlmr_model, {
        "tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
        "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "mask_token": {"content": "<mask>", "lstrip": True, "rstrip": False,
                       "normalized": True, "single_word": False},
        "model_max_length": 512}, "xlmr-unigram"),
    "deberta-v2": ("spm.model", deberta_model, {
        "tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False,
        "split_by_punct": False, "bos_token": "[CLS]", "eos_token": "[SEP]",
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
        "mask_token": "[MASK]", "vocab_type": "spm"}, "t5-unigram"),
    "llama": ("tokenizer.model", llama_model, {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "clean_up_tokenization_spaces": False, "legacy": False,
        "model_max_length": 4096}, "llama2"),
    "llama-legacy": ("tokenizer.model", llama_model, {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": True,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False, "legacy": True, "add_prefix_space": False,
        "model_max_length": 4096}, "llama2"),
}
# one more text: every family's special and added tokens, between words and glued to them
SPECIALS_TEXT = ("a <extra_id_0> b<extra_id_2>c <pad> </s> <unk> <s> <mask> [MASK] [CLS] [SEP] "
                 "[UNK] [PAD] x<html>y  <extra_id_9>")
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token", "additional_special_tokens")


def write_dir(src, out, name):
    fname, build, cfg, _ = FAMILIES[name]
    with open(os.path.join(out, fname), "wb") as f:
        f.write(build(src))
    cfg = dict(cfg)
    if "config.json" in cfg:
        write_json(os.path.join(out, "config.json"), cfg.pop("config.json"))
    write_json(os.path.join(out, "tokenizer_config.json"), cfg)
    write_json(os.path.join(out, "special_tokens_map.json"),
               {k: cfg[k] for k in SPECIAL_KEYS if cfg.get(k) is not None})
    return os.path.join(out, fname)


def entry(tok, text):
    enc = tok(text, return_offsets_mapping=True)
    ids = enc["input_ids"]
    return {
        "text": text,
        "ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
        "encoding_tokens": enc.encodings[0].tokens,
        "offsets": [list(o) for o in enc["offset_mapping"]],
        "ids_no_special": tok(text, add_special_tokens=False)["input_ids"],
        "decoded": tok.decode(ids, skip_special_tokens=True),
    }


def pair_entry(tok, text, pair):
    enc = tok(text, pair, return_offsets_mapping=True)
    return {"text": text, "pair": pair, "ids": enc["input_ids"],
            "type_ids": enc.encodings[0].type_ids,
            "offsets": [list(o) for o in enc["offset_mapping"]]}


def slow4(out_root):
    """Records transformers 4's slow (sentencepiece) tokenizer next to the references."""
    for name in sorted(FAMILIES):
        out = os.path.join(out_root, "tokenizers-spm", name)
        tok = AutoTokenizer.from_pretrained(out, use_fast=False)
        refs = json.load(open(os.path.join(out, "refs-dev.json"), encoding="utf-8"))
        mine = []
        for r in refs:
            ids = tok(r["text"])["input_ids"]
            mine.append({"text": r["text"], "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                         "decoded": tok.decode(ids, skip_special_tokens=True)})
        write_json(os.path.join(out, "slow-4x.json"),
                   {"transformers": transformers.__version__, "class": type(tok).__name__,
                    "entries": mine}, None)
        print("%-13s %s: ids equal on %d of %d, decoded on %d" % (
            name, type(tok).__name__, sum(a["ids"] == b["ids"] for a, b in zip(mine, refs)),
            len(refs), sum(a["decoded"] == b["decoded"] for a, b in zip(mine, refs))))


def fuzz_seeds(src, out):
    """Seeds of tests/fuzz/fuzz_spm.c: the class byte (its index in the harness's list: T5,
    ALBERT, XLM-R, DeBERTa-v2, Llama) then a small model cut from a fixture's (no charsmap:
    the real ones are 240 kB), and one seed keeping a piece of every type."""
    os.makedirs(out, exist_ok=True)
    t5 = load(src, "t5-unigram")["model"]["vocab"][3:60]
    normals = [(p, s, NORMAL) for p, s in t5]
    seeds = {
        "t5": (0, [("<pad>", 0.0, CONTROL), ("</s>", 0.0, CONTROL), ("<unk>", 0.0, UNKNOWN)] +
               normals, UNIGRAM, (2, -1, 1, 0), False),
        "albert": (1, [("<pad>", 0.0, CONTROL), ("<unk>", 0.0, UNKNOWN), ("[CLS]", 0.0, CONTROL),
                       ("[SEP]", 0.0, CONTROL), ("[MASK]", 0.0, USER_DEFINED)] + normals,
                   UNIGRAM, (1, 2, 3, 0), False),
        "xlmr": (2, [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)] +
                 normals, UNIGRAM, (0, 1, 2, -1), False),
        "deberta-v2": (3, [("[PAD]", 0.0, CONTROL), ("[CLS]", 0.0, CONTROL),
                           ("[SEP]", 0.0, CONTROL), ("[UNK]", 0.0, UNKNOWN)] + normals,
                       UNIGRAM, (3, 1, 2, 0), False),
    }
    ll = sorted(load(src, "llama2")["model"]["vocab"].items(), key=lambda kv: kv[1])
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    pieces += [("<0x%02X>" % b, 0.0, BYTE) for b in range(256)]
    pieces += [(p, float(-(i - 259)), NORMAL) for p, i in ll[259:400]]
    seeds["llama"] = (4, pieces, BPE, (0, 1, 2, -1), True)
    kinds = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("<user>", 0.0, USER_DEFINED),
             ("<unused>", 0.0, 5), ("<0x41>", 0.0, BYTE)] + normals[:20]
    seeds["every-type"] = (4, kinds, UNIGRAM, (0, 1, -1, -1), True)
    for name, (cls, pcs, mt, ids, bf) in seeds.items():
        model = model_proto(pcs, mt, ids, b"", byte_fallback=bf)
        with open(os.path.join(out, name + ".model"), "wb") as f:
            f.write(bytes([cls]) + model)


def main(argv):
    if len(argv) == 3 and argv[1] == "--slow":
        return slow4(argv[2])
    if len(argv) == 4 and argv[1] == "--seeds":
        return fuzz_seeds(argv[2], argv[3])
    if len(argv) < 3:
        sys.exit(__doc__)
    src_root, out_root = argv[1], os.path.join(argv[2], "tokenizers-spm")
    for name in argv[3:] or sorted(FAMILIES):
        out = os.path.join(out_root, name)
        os.makedirs(out, exist_ok=True)
        model = write_dir(src_root, out, name)
        sp = sentencepiece.SentencePieceProcessor(model_file=model)
        tok = AutoTokenizer.from_pretrained(out)
        assert not os.path.exists(os.path.join(out, "tokenizer.json"))
        refs = json.load(open(os.path.join(src_root, FAMILIES[name][3], "refs-dev.json"),
                              encoding="utf-8"))
        texts = [r["text"] for r in refs] + [SPECIALS_TEXT]
        mine = [entry(tok, t) for t in texts]
        write_json(os.path.join(out, "refs-dev.json"), mine, None)
        spm = [{"text": t, "pieces": sp.encode(t, out_type=str), "ids": sp.encode(t)}
               for t in texts]
        write_json(os.path.join(out, "spm-dev.json"), spm, None)
        same = sum(1 for a, b in zip(mine, spm)
                   if tok.convert_ids_to_tokens(a["ids_no_special"]) == b["pieces"])
        print("%-13s %s: %d entries, vocab %d, %d tokenized as sentencepiece does" %
              (name, type(tok).__name__, len(mine), len(tok), same))
        write_json(os.path.join(out, "pairs-dev.json"),
                   [pair_entry(tok, a, b) for a, b in zip(texts[0:24:2], texts[1:24:2])], None)
    write_json(os.path.join(out_root, "versions.json"),
               {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "sentencepiece": sentencepiece.__version__,
                "protobuf": google.protobuf.__version__, "python": sys.version.split()[0]})


if __name__ == "__main__":
    main(sys.argv)
