#!/usr/bin/python3
"""Summarize a bench/run_llamacpp.sh run: inferd next to llama.cpp, each dtype against its match.

Input: the JSON lines run_llamacpp.sh saved, tagged with their round: bench-generate's
(engine "inferd", dtype fp32/bf16/int8/int4), llamacpp-bench's (engine "llamacpp", dtype the GGUF
type), llama-bench's own (engine "llama-bench": pp<P> and tg<N> tests, samples in ns), the
machine, model and check lines. Per engine, dtype and measure (prefill of P tokens, time to
first token, decode at S streams): the median over rounds of each round's median latency
(rounds whose foreign_cpu is above 0.02 left out when a clean round exists), its spread, and
tokens/s. Ratios are speeds inferd / llama.cpp (> 1: inferd faster; time to first token:
llama.cpp ms / inferd ms), of those medians and of each side's best round. llama-bench's tg<N>
decodes from an empty context, one token per step, so it is set against the 1-stream decode
row (whose context is the CONTEXT-token prompt); its pp<P> against prefill P. A dtype with no
inferd lines (int4 before `dtype: int4` lands) prints n/a.

usage: summarize_llamacpp.py FILE.jsonl ...
"""

import os
import statistics
import sys

import bench_jsonl

DISTURBED = 0.02
PAIRS = [("fp32", "F32"), ("bf16", "BF16"), ("int8", "Q8_0"), ("int4", "Q4_0")]


def llama_bench_row(r):
    """A llama-bench line as (dtype, metric, streams, prompt, median ms per measured unit)."""
    t = os.path.basename(r.get("model_filename", "")).rsplit(".", 1)[0]
    samples = sorted(r.get("samples_ns") or [r.get("avg_ns", 0)])
    med = statistics.median(samples) / 1e6
    if r.get("n_gen", 0) > 0:
        return t, "decode", 1, 0, med / r["n_gen"]
    return t, "prefill", 1, r.get("n_prompt", 0), med


def load(paths):
    series, checks, machine, models, versions = {}, [], {}, {}, {}
    for r in bench_jsonl.records(paths):
        e = r.get("engine")
        if e == "machine":
            machine = r
        elif e == "model":
            models[r["dtype"]] = r["bytes"]
        elif r.get("metric") == "check":
            checks.append(r)
        elif e == "llama-bench":
            t, metric, s, prompt, ms = llama_bench_row(r)
            versions["llama-bench"] = f"build {r.get('build_commit', '?')}"
            key = ("llama-bench", t, metric, s, prompt)
            series.setdefault(key, []).append((r["round"], ms, 0.0))
        elif e in ("inferd", "llamacpp"):
            key = (e, r["dtype"], r["metric"], r["streams"], r["prompt"])
            series.setdefault(key, []).append(
                (r["round"], r["median_ms"], r.get("foreign_cpu") or 0.0))
            versions[e] = r.get("onednn") or r.get("version", "?")
            if e == "llamacpp":
                versions[e] += f" (KV {r.get('kv')}, flash attention {r.get('flash_attn')})"
    return series, checks, machine, models, versions


def stats(series):
    out = {}
    for k, v in series.items():
        clean = [x for x in v if x[2] <= DISTURBED]
        use = clean or v
        meds = [x[1] for x in use]
        m = statistics.median(meds)
        out[k] = {"ms": m, "best": min(x[1] for x in v), "n": len(use),
                  "spread": (max(meds) - min(meds)) / m if m else 0.0,
                  "foreign": max(x[2] for x in use), "disturbed": not clean}
    return out


def tokens_of(metric, streams, prompt):
    return streams if metric == "decode" else 1 if metric == "ttft" else prompt


def cell(st, metric, streams, prompt):
    if not st:
        return "n/a"
    if metric == "ttft":
        return f"{st['ms']:.1f} ms"
    tps = tokens_of(metric, streams, prompt) / st["ms"] * 1e3
    return f"{tps:.1f} ({st['ms']:.1f} ms)" if metric == "decode" else f"{tps:.1f}"


def ratio(a, b, key):
    return f"{b[key] / a[key]:.2f}x" if a and b else "n/a"


def label(metric, streams, prompt):
    if metric == "prefill":
        return f"prefill {prompt} tokens (tokens/s)"
    if metric == "ttft":
        return f"time to first token, {prompt}-token prompt"
    return f"decode, {streams} stream{'s' if streams > 1 else ''} (tokens/s; ms/step)"


def note(st):
    if not st:
        return ""
    return (f"{100 * st['spread']:.0f}% {st['n']} cpu {st['foreign']:.2f}"
            + (" DISTURBED" if st["disturbed"] else ""))


def main(paths):
    series, checks, machine, models, versions = load(paths)
    stat = stats(series)
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
          f"{machine.get('threads', '?')} threads per engine")
    for k in sorted(versions):
        print(f"  {k}: {versions[k]}")
    for c in checks:
        print(f"  check {c['model']}, {c['prompt']}-token prompt: inferd fp32 vs llama.cpp F32, "
              f"max |logit difference| after the prefill {c['prefill_max_abs_diff']:.1e}, after "
              f"one decode step {c['decode_max_abs_diff']:.1e}; greedy ids "
              f"{c['greedy_ids_same']}/{c['greedy_ids']} the same "
              f"({'ok' if c['ok'] else 'FAILED'}, tolerance {c['tolerance']:g})")
    if models:
        print("  GGUF bytes: " + ", ".join(f"{t} {b / 1e6:.0f} MB" for t, b in models.items()))
    print()
    print("| inferd - llama.cpp | measure | inferd | llama.cpp | inferd/llama.cpp "
          "| best rounds | llama-bench | inferd/llama-bench | spread, rounds, foreign CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    measures = sorted({(k[2], k[3], k[4]) for k in stat if k[0] != "llama-bench"},
                      key=lambda x: (["prefill", "ttft", "decode"].index(x[0]), x[1], x[2]))
    for ours, theirs in PAIRS:
        for metric, streams, prompt in measures:
            a = stat.get(("inferd", ours, metric, streams, prompt))
            b = stat.get(("llamacpp", theirs, metric, streams, prompt))
            lb_key = ("llama-bench", theirs, metric, 1, prompt if metric == "prefill" else 0)
            lb = stat.get(lb_key) if streams == 1 and metric != "ttft" else None
            if not b and not a:
                continue
            lb_cell = cell(lb, metric, streams, prompt) if lb else "-"
            lb_ratio = ratio(a, lb, "ms") if lb else "-"
            print(f"| {ours} - {theirs} | {label(metric, streams, prompt)} "
                  f"| {cell(a, metric, streams, prompt)} | {cell(b, metric, streams, prompt)} "
                  f"| {ratio(a, b, 'ms')} | {ratio(a, b, 'best')} | {lb_cell} | {lb_ratio} "
                  f"| inferd {note(a) or 'n/a'}; llama.cpp {note(b)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
