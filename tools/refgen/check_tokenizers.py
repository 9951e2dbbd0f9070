#!/usr/bin/env python3
"""check_tokenizers: every input_ids a refs-dev.json records (transformers' tokenization) must
be what `inferd tokenize` gives for the same text with the fixture directory's own tokenizer
files. Standard library only; run after make_fixtures.sh with a built inferd:

  check_tokenizers.py INFERD MODELS_DIR      (MODELS_DIR: an unpacked archive's models/)
"""

import json
import os
import subprocess
import sys


def cases(refs):
    """(text, pair, ids) triples from every list that records input_ids for a plain text."""
    for key in ("logits", "pair_logits", "token_features", "generations"):
        for r in refs.get(key, []):
            text = r.get("text", r.get("prompt", r.get("question")))
            pair = r.get("pair", r.get("context"))
            yield text, pair, r["input_ids"]
    for r in refs.get("batch", {}).get("rows", []):
        if "text" in r and "attention_mask" in r:
            ids = [i for i, m in zip(r["input_ids"], r["attention_mask"]) if m]
            yield r["text"], None, ids
    for r in refs.get("chat", []):
        yield r["text"], None, r["input_ids"]


def tokenize(inferd, model_dir, rows, pair):
    args = [inferd, "tokenize", "--tokenizer", model_dir] + (["--pair"] if pair else [])
    lines = "".join(json.dumps({"text": t, **({"pair": p} if pair else {})}) + "\n" for t, p, _ in rows)
    out = subprocess.run(args, input=lines, capture_output=True, text=True, check=False).stdout
    return [json.loads(l) for l in out.splitlines()]


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    inferd, models = argv[1], argv[2]
    bad = total = 0
    for name in sorted(os.listdir(models)):
        refs = json.load(open(os.path.join(models, name, "refs-dev.json"), encoding="utf-8"))
        rows = list(cases(refs))
        for pair in (False, True):
            sel = [r for r in rows if (r[1] is not None) == pair]
            if not sel:
                continue
            got = tokenize(inferd, os.path.join(models, name), sel, pair)
            for (t, p, want), g in zip(sel, got):
                total += 1
                if g.get("ids") != want:
                    bad += 1
                    print("%s: %r%s: inferd %s, transformers %s" % (name, t[:40], " + pair" if p else "",
                                                                    g.get("ids", g)[:12], want[:12]))
        print("%-24s %d inputs" % (name, len(rows)))
    print("%d passed, %d failed" % (total - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
