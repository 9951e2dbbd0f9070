#!/usr/bin/python3
"""Summarize a bench/run_memory.sh run: a served model's resident memory next to its weights.

Input: run_memory.sh's JSON lines (one per model, dtype and round: seconds to /ready, the
daemon's /proc status in kB, the parameters counted by parameters() below from the model's
safetensors header). The weights' bytes:
every parameter at the dtype's width (fp32 4, bf16 2, int8 1, int4 0.5 bytes), the issue-18
denominator; the token-embedding table's share is printed beside it, since inferd keeps that
table at f32 (fp32) or bf16 (the other dtypes) and not at 1 or 0.5 bytes. Per model and dtype:
the median seconds to /ready over rounds, the last round's memory (it does not vary), and
VmRSS / weights (goal <= 1.2x) and RssAnon / weights (the same without mapped library code).
The "tiny" model (the bundled 4.4M-parameter classifier) shows what a served model costs
besides its weights; the last column sets each model's VmRSS minus that cost against its
weights.

usage: summarize_memory.py FILE.jsonl ...
"""

import json
import statistics
import struct
import sys

import bench_jsonl

WIDTH = {"fp32": 4.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
EMBEDDING_NAMES = ("embed_tokens", "word_embeddings", "wte")


def parameters(path):
    """(all parameters, token-embedding parameters) of a safetensors file, from its header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    total = embedding = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for d in t["shape"]:
            count *= d
        total += count
        if any(e in name for e in EMBEDDING_NAMES):
            embedding += count
    return total, embedding


def main(paths):
    rows = {}
    for r in bench_jsonl.records(paths):
        rows.setdefault((r["model"], r["dtype"]), []).append(r)
    fixed = None
    if ("tiny", "fp32") in rows:
        t = rows[("tiny", "fp32")][-1]
        fixed = t["vm_rss_kb"] * 1024 / 1e6 - t["parameters"] * 4 / 1e6
    print("| model | dtype | parameters | weights at dtype | token embeddings | VmRSS | RssAnon |"
          " VmRSS / weights | RssAnon / weights | peak (VmHWM) | start to /ready |"
          " (VmRSS - fixed) / weights |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (model, dtype), rs in rows.items():
        last = rs[-1]
        total, emb = last["parameters"], last["embedding_parameters"]
        weights = total * WIDTH[dtype] / 1e6
        rss = last["vm_rss_kb"] * 1024 / 1e6
        anon = last["rss_anon_kb"] * 1024 / 1e6
        hwm = last["vm_hwm_kb"] * 1024 / 1e6
        ready = statistics.median(r["ready_s"] for r in rs)
        spread = f"{min(r['ready_s'] for r in rs):.2f}-{max(r['ready_s'] for r in rs):.2f}"
        print(f"| {model} | {dtype} | {total / 1e6:.1f} M | {weights:.0f} MB |"
              f" {100.0 * emb / total:.0f}% | {rss:.0f} MB | {anon:.0f} MB |"
              f" {rss / weights:.2f}x | {anon / weights:.2f}x | {hwm:.0f} MB |"
              f" {ready:.2f} s ({spread}) |"
              f" {'n/a' if fixed is None else f'{(rss - fixed) / weights:.2f}x'} |")
    if fixed is not None:
        print(f"\nfixed: {fixed:.0f} MB (tiny's VmRSS minus its f32 weights)")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
