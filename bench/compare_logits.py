#!/usr/bin/python3
"""Compare two --dump-check files of the same prompt: inferd's (bench-generate) and llama.cpp's
(llamacpp-bench), for bench/run_llamacpp.sh's parity check before any timing.

Each file holds, for stream 0's prompt, the logits after the prefill, the logits after the first
decode step and the first greedy ids. Prints one JSON line (metric "check": the largest absolute
logit difference after the prefill and after the decode step, how many greedy ids agree) and
exits 1 unless both differences are within the tolerance and every greedy id agrees.

usage: compare_logits.py INFERD.json LLAMACPP.json [TOLERANCE (default 1e-5)]
"""

import json
import sys


def max_abs_diff(a, b):
    if len(a) != len(b):
        return float("inf")
    return max(abs(x - y) for x, y in zip(a, b))


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    with open(argv[1]) as f:
        ours = json.load(f)
    with open(argv[2]) as f:
        theirs = json.load(f)
    tol = float(argv[3]) if len(argv) == 4 else 1e-5
    pre = max_abs_diff(ours["prefill_logits"], theirs["prefill_logits"])
    dec = max_abs_diff(ours["decode_logits"], theirs["decode_logits"])
    ids_a, ids_b = ours["greedy_ids"], theirs["greedy_ids"]
    same = sum(1 for x, y in zip(ids_a, ids_b) if x == y)
    ok = pre <= tol and dec <= tol and same == len(ids_a) == len(ids_b)
    print(json.dumps({"engine": "llamacpp", "metric": "check", "model": ours.get("model"),
                      "prompt": ours.get("prompt"), "prefill_max_abs_diff": pre,
                      "decode_max_abs_diff": dec, "greedy_ids": len(ids_a),
                      "greedy_ids_same": same, "ok": ok, "tolerance": tol,
                      "inferd_ids": ids_a, "llamacpp_ids": ids_b}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
