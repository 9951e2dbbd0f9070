#!/usr/bin/python3
"""Summarize a bench/run_families.sh run: the issue-14 families, inferd next to PyTorch eager.

Input: the JSON lines run_families.sh saved (inferd bench, bench-generate, torch_families.py,
the machine and model lines, the logits checks), each tagged with its round. Per model, engine
and measure (an encoder's forward pass of a batch x seq shape; a decoder's prefill of P tokens
and its decode at one stream): the median over rounds of each round's median latency (rounds
whose foreign_cpu is above 0.02 are left out when a clean round exists, as
summarize_encoder.py does) and its spread; speeds are sequences/s (encoders: batch / median)
or tokens/s (prefill: P / median; decode: 1 / median step). Ratios are speeds inferd/torch
(> 1: inferd faster), of those medians and of each engine's best round median (other
processes only ever slow a round down). Standard library only.

usage: summarize_families.py FILE.jsonl ...
"""

import statistics
import sys

import bench_jsonl

DISTURBED = 0.02


def key_of(r):
    e = r.get("engine")
    if e == "inferd":
        return "inferd-" + r.get("dtype", "fp32")
    if e == "torch" and r.get("metric") != "check":
        return "torch"
    return None


def measure_of(r):
    """(kind, a, b): ("enc", batch, seq), ("prefill", prompt, 1), ("decode", prompt, streams)."""
    if "metric" in r:
        return (r["metric"], r["prompt"], r.get("streams", 1))
    return ("enc", r["batch"], r["seq"])


def load(paths):
    rows, checks, machine, models, versions = [], [], {}, {}, {}
    for r in bench_jsonl.records(paths):
        e = r.get("engine")
        if e == "machine":
            machine = r
        elif e == "model":
            models[r["model"]] = r
        elif r.get("metric") == "check":
            checks.append(r)
        elif key_of(r):
            rows.append(r)
            k = key_of(r)
            versions[k] = r.get("onednn") or (
                f"torch {r.get('torch', '?')}, transformers {r.get('transformers', '?')}")
    return rows, checks, machine, models, versions


def stats(rows):
    series = {}
    for r in rows:
        k = (r["model"], key_of(r), measure_of(r))
        series.setdefault(k, []).append((r["median_ms"], r.get("foreign_cpu") or 0.0, r.get("attn")))
    out = {}
    for k, v in series.items():
        clean = [x for x in v if x[1] <= DISTURBED]
        use = clean or v
        meds = [x[0] for x in use]
        m = statistics.median(meds)
        out[k] = {"ms": m, "best": min(x[0] for x in v), "n": len(use),
                  "spread": (max(meds) - min(meds)) / m if m else 0.0,
                  "foreign": max(x[1] for x in use), "disturbed": not clean, "attn": v[0][2]}
    return out


def per_second(measure, ms):
    kind, a, b = measure
    n = a if kind in ("enc", "prefill") else b  # encoders: batch; prefill: prompt; decode: streams
    return n / ms * 1e3


def label(measure):
    kind, a, b = measure
    if kind == "enc":
        return f"forward {a}x{b} (seq/s)"
    if kind == "prefill":
        return f"prefill {a} tokens (tokens/s)"
    return f"decode, {b} stream after {a} (tokens/s)"


def main(paths):
    rows, checks, machine, models, versions = load(paths)
    stat = stats(rows)
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
          f"{machine.get('threads', '?')} threads per engine")
    for k in sorted(versions):
        print(f"  {k}: {versions[k]}")
    for c in {c["model"]: c for c in checks}.values():
        if "task" in c:
            print(f"  check {c['model']}: inferd run vs transformers.pipeline('{c['task']}'), "
                  f"max |difference| {c['max_abs_diff']:.1e} ({'ok' if c['ok'] else 'FAILED'})")
            continue
        print(f"  check {c['model']}: inferd vs transformers, max |logit difference| after the "
              f"{c['prompt']}-token prefill {c['prefill_max_abs_diff']:.1e}, after one decode step "
              f"{c['decode_max_abs_diff']:.1e} (largest |logit| {c['max_abs_logit']:.2f}); greedy "
              f"ids {c['greedy_ids_agree']}/{c['greedy_ids']} the same "
              f"({'ok' if c['ok'] else 'FAILED'})")
    for model in sorted({r["model"] for r in rows}):
        seqs = {tuple(r["greedy_ids"]) for r in rows if r["model"] == model and r.get("greedy_ids")}
        if seqs:
            print(f"  decode greedy ids, {model}: "
                  + ("the same in every engine and round" if len(seqs) == 1
                     else f"DIFFER ({len(seqs)} variants)"))
    print()
    keys = sorted({k[1] for k in stat}, key=lambda k: (k == "torch", k))
    inferd_keys = [k for k in keys if k != "torch"]
    print("| model | architecture (size) | measure | " + " | ".join(
        "PyTorch eager" if k == "torch" else k for k in keys) + " | "
        + " | ".join(f"{k} / torch" for k in inferd_keys) + " | "
        + " | ".join(f"{k} / torch, best rounds" for k in inferd_keys)
        + " | rounds, spread, foreign CPU |")
    print("|---|---|---|" + "---:|" * (len(keys) + 2 * len(inferd_keys)) + "---|")
    order = [r["model"] for r in rows]
    measures = sorted({(k[0], k[2]) for k in stat},
                      key=lambda x: (order.index(x[0]), ["enc", "prefill", "decode"].index(x[1][0]),
                                     x[1][1:]))
    for model, ms in measures:
        sts = {k: stat.get((model, k, ms)) for k in keys}
        t = sts.get("torch")
        ratios, best = [], []
        for k in inferd_keys:
            a = sts.get(k)
            ratios.append(f"**{t['ms'] / a['ms']:.2f}x**" if a and t else "-")
            best.append(f"{t['best'] / a['best']:.2f}x" if a and t else "-")
        cells = []
        for k in keys:
            s = sts[k]
            cells.append(f"{per_second(ms, s['ms']):.3g} ({s['ms']:.4g} ms)" if s else "-")
        info = models.get(model, {})
        size = f"{info['bytes'] / 1e9:.2f} GB fp32" if info.get("bytes") else "?"
        notes = "; ".join(
            f"{k} {s['n']}, {100 * s['spread']:.0f}%, {s['foreign']:.2f}"
            + (" DISTURBED" if s["disturbed"] else "") + (f", attn {s['attn']}" if s["attn"] else "")
            for k, s in sts.items() if s)
        print(f"| {model} | {info.get('arch', '?')} ({size}) | {label(ms)} | " + " | ".join(cells)
              + " | " + " | ".join(ratios) + " | " + " | ".join(best) + f" | {notes} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
