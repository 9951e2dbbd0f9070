#!/usr/bin/python3
"""Summarize a bench/run_encoder.sh run: inferd's encoder next to the anchors of the same run.

Input: the JSON lines run_encoder.sh saved (inferd bench, ort_bert.js, torch_bert.py, gemm_peak),
each tagged with its round. Per engine and (B,S): the median over rounds of each round's median
latency (rounds whose foreign_cpu is above 0.02 are left out when a clean round exists), the
spread of those round medians, seq/s = B / median. Ratios: throughput inferd/anchor (> 1: inferd
faster), latency inferd/anchor for B = 1 (< 1: inferd faster). fp32 and bf16 are compared with
the faster ORT fp32 graph (optimized or plain) and the faster torch variant; int8 with ORT's int8
graph. Share of the ceiling: achieved GFLOP/s over gemm_peak's time-weighted BERT-layer matmul
ceiling of the same dtype.

usage: summarize_encoder.py FILE.jsonl ...
"""

import statistics
import sys

import bench_jsonl

H, F, LAYERS, LABELS = 768, 3072, 12, 2
DISTURBED = 0.02
WEIGHT_BYTES = LAYERS * (4 * H * H + 2 * H * F) * 4


def flops_per_sequence(seq):
    dense = 2 * seq * LAYERS * (4 * H * H + 2 * H * F)
    attention = LAYERS * 2 * (2 * seq * seq * H)
    head = 2 * H * H + 2 * H * LABELS
    return dense + attention + head


def layer_ceiling(gemm, dtype):
    g = {(r["K"], r["N"]): r["gflops"] for r in gemm
         if r.get("api") == "matmul" and r.get("type") == dtype and "gflops" in r}
    parts = [(4, (768, 768)), (1, (768, 3072)), (1, (3072, 768))]
    if any(kn not in g for _, kn in parts):
        return None
    work = [n * 2 * kn[0] * kn[1] for n, kn in parts]
    return sum(work) / sum(w / g[kn] for w, (_, kn) in zip(work, parts))


def key_of(r):
    e = r.get("engine")
    if e == "inferd":
        return "inferd-" + r["dtype"]
    if e == "onnxruntime":
        v = r["variant"]
        return "ort-int8" if "int8" in v else "ort-opt" if "ortopt" in v else "ort-plain"
    if e == "torch":
        return "torch-" + r["variant"]
    return None


def main(paths):
    rows, gemm, machine, versions = [], [], {}, {}
    for r in bench_jsonl.records(paths):
        e = r.get("engine")
        if e == "onednn" or e == "memory":
            gemm.append(r)
        elif e == "machine":
            machine = r
        elif key_of(r):
            rows.append(r)
            k = key_of(r)
            versions[k] = r.get("version") or r.get("onednn") or ""
            if r.get("blas"):
                versions[k] += " blas=" + r["blas"]

    # (key, B, S) -> list of (round, median_ms, foreign)
    series = {}
    for r in rows:
        series.setdefault((key_of(r), r["batch"], r["seq"]), []).append(
            (r.get("round"), r["median_ms"], r.get("foreign_cpu") or 0.0))
    stat = {}
    for k, v in series.items():
        clean = [x for x in v if x[2] <= DISTURBED]
        use = clean or v
        meds = [x[1] for x in use]
        m = statistics.median(meds)
        stat[k] = {"ms": m, "spread": (max(meds) - min(meds)) / m if m else 0.0,
                   "n": len(use), "dropped": len(v) - len(clean) if clean else 0,
                   "disturbed": not clean, "foreign": max(x[2] for x in use)}

    ceil = {d: layer_ceiling(gemm, d) for d in ("f32", "bf16", "int8")}
    mem = next((r["gbps"] for r in gemm if r.get("engine") == "memory"), None)
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; "
          f"oneDNN matmul ceilings (GFLOP/s, BERT-layer mix, M=1024): "
          + ", ".join(f"{d} {c:.0f}" if c else f"{d} ?" for d, c in ceil.items())
          + (f"; memory read {mem:.1f} GB/s" if mem else ""))
    for k in sorted(versions):
        print(f"  {k}: {versions[k]}")
    print()

    shapes = sorted({(b, s) for (_, b, s) in stat}, key=lambda x: (x[0] * x[1], x[0]))
    print("| B x S | engine | median ms | seq/s | spread | rounds (dropped) | GFLOP/s "
          "| % ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for b, s in shapes:
        for k in sorted({k for (k, bb, ss) in stat if (bb, ss) == (b, s)}):
            st = stat[(k, b, s)]
            gf = b / (st["ms"] / 1e3) * flops_per_sequence(s) / 1e9
            d = "bf16" if k.endswith("bf16") else "int8" if k.endswith("int8") else "f32"
            pct = f"{100 * gf / ceil[d]:.0f}% ({d})" if ceil.get(d) else "?"
            flag = " DISTURBED" if st["disturbed"] else ""
            print(f"| {b}x{s} | {k} | {st['ms']:.1f} | {b / st['ms'] * 1e3:.2f} | "
                  f"{100 * st['spread']:.0f}% | {st['n']} ({st['dropped']}){flag} | "
                  f"{gf:.0f} | {pct} |")
    print()

    def best(keys, b, s):
        c = [(stat[(k, b, s)]["ms"], k) for k in keys if (k, b, s) in stat]
        return min(c) if c else (None, None)

    print("| B x S | inferd | vs | anchor ms | inferd ms | throughput ratio | latency ratio |")
    print("|---|---|---|---|---|---|---|")
    for b, s in shapes:
        ort_ms, ort_k = best(["ort-opt", "ort-plain"], b, s)
        opt_ms = stat.get(("ort-opt", b, s), {}).get("ms")
        torch_ms, torch_k = best(["torch-hand", "torch-fastpath"], b, s)
        int8_ms = stat.get(("ort-int8", b, s), {}).get("ms")
        for d in ("fp32", "bf16", "int8"):
            st = stat.get((f"inferd-{d}", b, s))
            if not st:
                continue
            anchors = [(ort_k, ort_ms), ("ort-opt", opt_ms), (torch_k, torch_ms)]
            if d == "int8":
                anchors = [("ort-int8", int8_ms)] + anchors
            seen = set()
            for name, ams in anchors:
                if not ams or name in seen:
                    continue
                seen.add(name)
                lat = f"{st['ms'] / ams:.2f}" if b == 1 else ""
                print(f"| {b}x{s} | {d} | {name} | {ams:.1f} | {st['ms']:.1f} | "
                      f"{ams / st['ms']:.2f} | {lat} |")
    if mem:
        print()
        print(f"memory floor (weights / {mem:.1f} GB/s): fp32 {WEIGHT_BYTES / mem / 1e6:.1f} ms, "
              f"bf16 {WEIGHT_BYTES / 2 / mem / 1e6:.1f} ms, "
              f"int8 {WEIGHT_BYTES / 4 / mem / 1e6:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
