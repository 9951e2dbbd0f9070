#!/usr/bin/python3
"""Summarize a bench/run_generate.sh run: inferd's generation speed next to PyTorch of the same run.

Input: the JSON lines run_generate.sh saved (bench-generate, torch_decoder.py, the machine and
model lines, the logits checks), each tagged with its round. Per model, engine and measure
(prefill of P tokens, time to first token, decode at S streams): the median over rounds of
each round's median latency (rounds whose foreign_cpu is above 0.02 are left out when a clean
round exists, as summarize_encoder.py does), the spread of those round medians, and
tokens/s = tokens / median (prefill: P; decode: S per step). Ratios are speeds inferd/torch
(> 1: inferd faster; for the time to first token, torch ms / inferd ms), of those medians and,
less sensitive to other processes (which only ever slow a round down), of each engine's best
round median. Continuous batching:
decode tokens/s at the most streams over one stream, per engine; the issue asks for >= 4x.
Decode at one stream reads every weight once per token: bytes of the model / step latency is
the memory bandwidth it reaches (shown as GB/s).

usage: summarize_generate.py FILE.jsonl ...
"""

import statistics
import sys

import bench_jsonl

DISTURBED = 0.02
TARGET_BATCHING = 4.0


def key_of(r):
    e = r.get("engine")
    if e == "inferd":
        return "inferd-" + r.get("dtype", "fp32")
    if e == "torch" and r.get("metric") != "check":
        return "torch"
    return None


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
            versions[k] = r.get("onednn") or ("torch " + r.get("version", "?"))
            if r.get("blas"):
                versions[k] += " blas=" + r["blas"]
    return rows, checks, machine, models, versions


def stats(rows):
    """(model, key, metric, streams, prompt) -> median ms over rounds and its spread."""
    series = {}
    for r in rows:
        k = (r["model"], key_of(r), r["metric"], r["streams"], r["prompt"])
        series.setdefault(k, []).append((r.get("round"), r["median_ms"], r.get("foreign_cpu") or 0.0))
    out = {}
    for k, v in series.items():
        clean = [x for x in v if x[2] <= DISTURBED]
        use = clean or v
        meds = [x[1] for x in use]
        m = statistics.median(meds)
        out[k] = {"ms": m, "best": min(x[1] for x in v),
                  "spread": (max(meds) - min(meds)) / m if m else 0.0, "n": len(use),
                  "dropped": len(v) - len(clean) if clean else 0, "disturbed": not clean,
                  "foreign": max(x[2] for x in use)}
    return out


def tokens_of(metric, streams, prompt):
    return streams if metric == "decode" else 1 if metric == "ttft" else prompt


def label(metric, streams, prompt):
    if metric == "prefill":
        return f"prefill {prompt} tokens (tokens/s)"
    if metric == "ttft":
        return f"time to first token, {prompt}-token prompt (ms)"
    return f"decode, {streams} stream{'s' if streams > 1 else ''} (tokens/s; ms/step)"


def cell(st, metric, streams, prompt):
    if not st:
        return "-"
    if metric == "ttft":
        return f"{st['ms']:.1f} ms"
    tps = tokens_of(metric, streams, prompt) / st["ms"] * 1e3
    if metric == "decode":
        return f"{tps:.1f} ({st['ms']:.1f} ms)"
    return f"{tps:.1f}"


def note(st):
    if not st:
        return ""
    flag = " DISTURBED" if st["disturbed"] else ""
    return f"{100 * st['spread']:.0f}% {st['n']}({st['dropped']}) cpu {st['foreign']:.2f}{flag}"


def main(paths):
    rows, checks, machine, models, versions = load(paths)
    stat = stats(rows)
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
          f"{machine.get('threads', '?')} threads per engine")
    for k in sorted(versions):
        print(f"  {k}: {versions[k]}")
    for c in {c["model"]: c for c in checks}.values():
        print(f"  check {c['model']}: inferd vs torch, max |logit difference| after the "
              f"{c['prompt']}-token prefill {c['prefill_max_abs_diff']:.1e}, after one decode step "
              f"{c['decode_max_abs_diff']:.1e}; greedy ids {c['greedy_ids_same']}/{c['greedy_ids']} "
              f"the same ({'ok' if c['ok'] else 'FAILED'}, tolerance {c['tolerance']:g})")
    # every decode line of a model (any engine, any stream count) must generate the same ids
    for model in sorted({r["model"] for r in rows}):
        seqs = {tuple(r["greedy_ids"]) for r in rows if r["model"] == model and r.get("greedy_ids")}
        n = sum(1 for r in rows if r["model"] == model and r.get("greedy_ids"))
        if seqs:
            print(f"  greedy ids of stream 0, {model}: "
                  + (f"identical in all {n} decode lines" if len(seqs) == 1
                     else f"DIFFER ({len(seqs)} variants over {n} lines)"))
    print()

    keys = sorted({k[1] for k in stat}, key=lambda k: (k == "torch", k))
    inferd_keys = [k for k in keys if k != "torch"]
    print("| model | measure | " + " | ".join(keys) + " | "
          + " | ".join(f"{k}/torch" for k in inferd_keys) + " | "
          + " | ".join(f"{k}/torch, best rounds" for k in inferd_keys)
          + " | spread, rounds (dropped), foreign CPU |")
    print("|---|---|" + "---|" * (len(keys) + 2 * len(inferd_keys)) + "---|")
    measures = sorted({(k[0], k[2], k[3], k[4]) for k in stat},
                      key=lambda x: (x[0], ["prefill", "ttft", "decode"].index(x[1]), x[2], x[3]))
    for model, metric, streams, prompt in measures:
        sts = {k: stat.get((model, k, metric, streams, prompt)) for k in keys}
        ratios, best = [], []
        for k in inferd_keys:
            a, t = sts.get(k), sts.get("torch")
            ratios.append(f"{t['ms'] / a['ms']:.2f}x" if a and t else "-")
            best.append(f"{t['best'] / a['best']:.2f}x" if a and t else "-")
        notes = "; ".join(f"{k} {note(sts[k])}" for k in keys if sts[k])
        print(f"| {model} | {label(metric, streams, prompt)} | "
              + " | ".join(cell(sts[k], metric, streams, prompt) for k in keys) + " | "
              + " | ".join(ratios) + " | " + " | ".join(best) + f" | {notes} |")
    print()

    print("| model | engine | decode tokens/s, 1 stream | at N streams | N-stream / 1-stream "
          f"| best rounds | >= {TARGET_BATCHING:g}x | 1 stream: weights / step |")
    print("|---|---|---|---|---|---|---|---|")
    for model in sorted({k[0] for k in stat}):
        dec = sorted({k[3] for k in stat if k[0] == model and k[2] == "decode"})
        if len(dec) < 2 or dec[0] != 1:
            continue
        top = dec[-1]
        for k in keys:
            # (decode lines differ only in streams: one context length per run)
            one = next((v for kk, v in stat.items() if kk[:4] == (model, k, "decode", 1)), None)
            many = next((v for kk, v in stat.items() if kk[:4] == (model, k, "decode", top)), None)
            if not one or not many:
                continue
            t1, tn = 1e3 / one["ms"], top * 1e3 / many["ms"]
            gbps = ""
            if model in models:
                gbps = f"{models[model]['bytes'] / (one['ms'] * 1e-3) / 1e9:.1f} GB/s"
            best = one["best"] * top / many["best"]
            print(f"| {model} | {k} | {t1:.1f} | {tn:.1f} ({top}) | {tn / t1:.2f}x | {best:.2f}x | "
                  f"{'yes' if tn / t1 >= TARGET_BATCHING else 'NO'} | {gbps} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
