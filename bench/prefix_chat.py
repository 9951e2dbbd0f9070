#!/usr/bin/env python3
"""prefix_chat: the client of bench/run_prefix.sh (Python's standard library only).

For each round, a two-turn chat against a running inferd's /v1/chat/completions, streamed: turn 1
is a system prompt of about PREFIX tokens (different every round, so that turn 1 finds nothing
cached) and a question; turn 2 repeats turn 1, its answer and a new question. Time to first
token is measured from sending the request to the first SSE chunk with a choice (inferd sends
the role chunk with the first token). Prints one JSON line per turn and round:
{"round", "turn", "ttft_s", "prompt_tokens", "cached_tokens"}; round 0 is a warm-up.

usage: prefix_chat.py PORT ROUNDS PREFIX_WORDS MAX_TOKENS
"""
import http.client
import json
import sys
import time

WORDS = ("river stone lantern harbor meadow copper violet signal orchard thunder quiet "
         "marble candle frontier willow engine paper silver garden northern").split()


def system_prompt(round_no, n_words):
    words = [WORDS[(round_no * 7 + i * 13 + i // 5) % len(WORDS)] for i in range(n_words)]
    return f"Session {round_no}. You are a careful assistant. Notes: " + " ".join(words)


def chat(port, messages, max_tokens):
    body = json.dumps({"messages": messages, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    t0 = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"prefix_chat: HTTP {resp.status}: {resp.read()[:500]!r}")
    ttft, text, usage = None, "", None
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        if ev.get("usage"):
            usage = ev["usage"]
        for ch in ev.get("choices") or []:
            if ttft is None:
                ttft = time.monotonic() - t0
            text += (ch.get("delta") or {}).get("content") or ""
    conn.close()
    if ttft is None or usage is None:
        sys.exit("prefix_chat: no token or no usage in the stream")
    return ttft, text, usage


def main():
    port, rounds, n_words, max_tokens = (int(a) for a in sys.argv[1:5])
    for r in range(rounds + 1):
        msgs = [{"role": "system", "content": system_prompt(r, n_words)},
                {"role": "user", "content": "What do the notes say about the harbor?"}]
        for turn in (1, 2):
            ttft, text, usage = chat(port, msgs, max_tokens)
            details = usage.get("prompt_tokens_details") or {}
            print(json.dumps({"round": r, "turn": turn, "ttft_s": round(ttft, 6),
                              "prompt_tokens": usage["prompt_tokens"],
                              "cached_tokens": details.get("cached_tokens", 0)}), flush=True)
            msgs = msgs + [{"role": "assistant", "content": text},
                           {"role": "user", "content": "And about the orchard, briefly?"}]


if __name__ == "__main__":
    main()
