#!/usr/bin/env python3
"""PyTorch eager and CTranslate2 anchors for bench/run_s2s.sh (summarization / translation).

Run with a venv that has torch, transformers 4.x (tools/refgen/requirements-4x.txt's pins) and
ctranslate2 (pinned in run_s2s.sh: CT2_VERSION); run_s2s.sh uses /work/venv-refgen4.

  make OUT_DIR TOKENIZERS_DIR MARIAN_TOKENIZER_DIR
      Writes two random-weight models, built by transformers' own classes with
      torch.manual_seed(SEED) and saved with save_pretrained (safetensors, fp32):
        OUT_DIR/bart    BartForConditionalGeneration, sshleifer/distilbart-cnn-12-6's shapes
                        (d_model 1024, 12 encoder + 6 decoder layers, 16 heads, ffn 4096), the
                        roberta fixture tokenizer (byte-level BPE, 50262 ids: vocab_size 50262
                        instead of 50264) as BartTokenizer;
        OUT_DIR/marian  MarianMTModel, Helsinki-NLP/opus-mt-en-de's shapes (d_model 512, 6 + 6
                        layers, 8 heads, ffn 2048, swish, sinusoidal positions, tied, vocab
                        58101 with <pad> last), the Marian fixture tokenizer (source.spm,
                        target.spm) with vocab.json filled up to 58101 entries by made-up
                        tokens the spm never produces (their ids keep the LM head's size).
      Generation settings are neutral (no forced BOS/EOS, no length penalty other than 1, no
      n-gram blocking; Marian keeps opus-mt's bad_words_ids [[pad]]): every engine runs the same
      plain greedy or beam search. A directory whose model.safetensors exists is kept.

  sentences N OUT
      N JSON lines {"inputs": text}: 8 to 40 consecutive words of a fixed English paragraph.

  convert DIR OUT
      ctranslate2.converters.TransformersConverter(DIR).convert(OUT) in float32; int8 is
      CTranslate2's compute_type="int8" at load (it quantizes the float32 weights then).

  check --model DIR --url URL --sentences FILE --new-tokens N [--ct2 DIR]
      transformers' generate() (greedy, and 4 beams) of each sentence alone against the
      daemon's answer at URL (`inferd serve`, fp32, POST /models/NAME with return_tensors):
      the ids must be equal. With --ct2, CTranslate2's ids are compared too
      (reported, not required: its beam search is not transformers'). One JSON line
      {"metric":"check",...}; exit status 1 when inferd differs.

  inferd --url URL --model NAME --compute-type fp32|int8 [--label inferd-base] (the options below)
      The same sentences through `inferd serve`'s POST /models/NAME (the daemon started by
      run_s2s.sh with the model's dtype), B requests in flight, each {"inputs": sentence,
      "parameters": {"num_beams": K, "max_new_tokens": N, "return_tensors": true}}; timed as
      a client sees it (tokenization, HTTP and JSON included), after an untimed warm-up (the
      first two sentences). Standard library only. --label names the engine in the line
      (run_s2s.sh's BASE_BUILD daemon: inferd-base).

  summarize FILE.jsonl ...
      The median sentences/s over rounds per model, batch, beams and engine, and the ratios
      inferd/ct2 (fp32, int8) and inferd/torch (fp32), as a Markdown table; with
      inferd-base lines (run_s2s.sh's BASE_BUILD), inferd/inferd-base too.

  torch --model DIR --sentences FILE --batch B --beams K --new-tokens N [--threads 2]
  ct2   --model CT2_DIR --hf DIR --compute-type float32|int8 (same options)
      Sentences per second of generate() / translate_batch() over the sentences in batches of
      B (the sentences cut into consecutive groups of B, each padded to its longest as the
      pipelines pad), K beams (1: greedy), at most N new tokens, after an untimed warm-up
      batch of the first two sentences; tokenization excluded (the ids are made before the clock starts; for
      CTranslate2, its token strings). One JSON line with sentences/s, the CPU seconds spent
      (user + system of every thread: the anchor's own process; for inferd the daemon's, from
      /proc) and sentences per CPU second (on a busy machine wall time mostly measures the
      scheduler; CPU time what the engine needed, spin-waiting threads included), and the
      mean number of generated tokens per sentence.
"""

import argparse
import json
import os
import shutil
import sys
import time

SEED = 16

BART = dict(
    vocab_size=50262, d_model=1024, encoder_layers=12, decoder_layers=6,
    encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
    decoder_ffn_dim=4096, max_position_embeddings=1024, activation_function="gelu",
    scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    decoder_start_token_id=2, forced_bos_token_id=None, forced_eos_token_id=None,
    add_bias_logits=False, add_final_layer_norm=False, normalize_before=False,
)
MARIAN = dict(
    vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
    encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
    decoder_ffn_dim=2048, max_position_embeddings=512, activation_function="swish",
    scale_embedding=True, static_position_embeddings=True, share_encoder_decoder_embeddings=True,
    pad_token_id=58100, eos_token_id=0, decoder_start_token_id=58100,
    forced_eos_token_id=None, bad_words_ids=[[58100]],
)


def set_threads(n):
    import torch
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)


def make_bart(out, tok_dir):
    import torch
    import transformers as tf
    torch.manual_seed(SEED)
    model = tf.BartForConditionalGeneration(tf.BartConfig(**BART)).eval()
    model.generation_config = tf.GenerationConfig(
        decoder_start_token_id=2, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(os.path.join(tok_dir, "roberta", "tokenizer.json"), out)
    cfg = json.load(open(os.path.join(tok_dir, "roberta", "tokenizer_config.json")))
    cfg["tokenizer_class"] = "BartTokenizer"
    cfg["model_max_length"] = 1024
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)


def make_marian(out, tok_dir):
    import torch
    import transformers as tf
    torch.manual_seed(SEED)
    model = tf.MarianMTModel(tf.MarianConfig(**MARIAN)).eval()
    model.generation_config = tf.GenerationConfig(
        decoder_start_token_id=58100, eos_token_id=0, pad_token_id=58100,
        bad_words_ids=[[58100]], max_length=512)
    model.save_pretrained(out, safe_serialization=True)
    for f in ("source.spm", "target.spm", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), out)
    vocab = json.load(open(os.path.join(tok_dir, "vocab.json")))
    pieces = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t != "<pad>"]
    pieces += ["<madeup_%d>" % i for i in range(MARIAN["vocab_size"] - 1 - len(pieces))]
    pieces.append("<pad>")
    json.dump({t: i for i, t in enumerate(pieces)}, open(os.path.join(out, "vocab.json"), "w"),
              ensure_ascii=False)


def cmd_make(a):
    for name, fn, tok in (("bart", make_bart, a.tokenizers), ("marian", make_marian, a.marian)):
        final = os.path.join(a.out, name)
        if os.path.exists(os.path.join(final, "model.safetensors")):
            continue
        part = final + ".part"
        shutil.rmtree(part, ignore_errors=True)
        fn(part, tok)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(part, final)
        print("s2s_anchor: wrote " + final, file=sys.stderr)


TEXT = (
    "The city council met on Tuesday evening to discuss the new bridge across the river. "
    "Several residents said the construction would block the old road for months, while the "
    "mayor argued that the bridge would cut travel times in half. A local engineer explained "
    "how the steel frame is assembled on the bank and moved into place at night. Shop owners "
    "asked for help during the works, and the council agreed to study a small fund for them. "
    "The weather was cold and many people stayed home, but the meeting was streamed online and "
    "watched by more than two thousand viewers. The final vote is expected next month after a "
    "second public hearing in the school hall.")


def cmd_sentences(a):
    """N JSON lines {"inputs": text}: runs of 8 to 40 consecutive words of TEXT (seeded)."""
    import random
    rng = random.Random(SEED)
    words = TEXT.split()
    with open(a.out, "w") as f:
        for _ in range(a.n):
            k = rng.randint(8, 40)
            i = rng.randint(0, len(words) - k)
            f.write(json.dumps({"inputs": " ".join(words[i:i + k])}) + "\n")


def cmd_convert(a):
    import ctranslate2
    ctranslate2.converters.TransformersConverter(a.model).convert(a.out, force=True)


def load_hf(path):
    import transformers as tf
    tok = tf.AutoTokenizer.from_pretrained(path)
    cls = tf.MarianMTModel if "marian" in json.load(
        open(os.path.join(path, "config.json")))["model_type"] else tf.BartForConditionalGeneration
    return tok, cls.from_pretrained(path).eval()


def sentences(path):
    return [json.loads(line)["inputs"] for line in open(path) if line.strip()]


def hf_generate(tok, model, texts, beams, new_tokens):
    import torch
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(**enc, num_beams=beams, do_sample=False, max_new_tokens=new_tokens)
    return out


def strip_ids(ids, pad, start):
    """One generated row without the decoder start and the padding after its eos."""
    ids = list(ids)[1:]
    while ids and ids[-1] == pad:
        ids.pop()
    return ids


def ct2_translate(tr, tok, texts, beams, new_tokens, batch):
    toks = [tok.convert_ids_to_tokens(tok(t)["input_ids"]) for t in texts]
    res = tr.translate_batch(toks, beam_size=beams, max_decoding_length=new_tokens,
                             max_batch_size=batch, return_scores=False)
    return [r.hypotheses[0] for r in res]


def post_inferd(url, text, params):
    import urllib.request
    body = json.dumps({"inputs": text, "parameters": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.loads(r.read())


def cmd_check(a):
    set_threads(a.threads)
    tok, model = load_hf(a.model)
    pad, eos = model.config.pad_token_id, model.config.eos_token_id
    ct2 = None
    if a.ct2:
        import ctranslate2
        ct2 = ctranslate2.Translator(a.ct2, device="cpu", intra_threads=a.threads)
    bad, n, ct2_equal = [], 0, 0
    for i, text in enumerate(sentences(a.sentences)):
        for beams in (1, 4):
            want = strip_ids(hf_generate(tok, model, [text], beams, a.new_tokens)[0], pad, None)
            ans = post_inferd(a.url, text, {"num_beams": beams, "max_new_tokens": a.new_tokens,
                                            "return_tensors": True})
            have = ans[0]["generated_token_ids"][1:] if isinstance(ans, list) else ans
            n += 1
            if have != want:
                bad.append({"sentence": i, "beams": beams, "transformers": want, "inferd": have})
            if ct2:
                hyp = tok.convert_tokens_to_ids(ct2_translate(ct2, tok, [text], beams,
                                                              a.new_tokens, 1)[0])
                ct2_equal += hyp == [t for t in want if t != eos]
    line = {"engine": "check", "metric": "check", "model": os.path.basename(a.model),
            "outputs": n, "inferd_equal": n - len(bad)}
    if ct2:
        line["ct2_equal"] = ct2_equal
    if bad:
        line["first_difference"] = bad[0]
    print(json.dumps(line))
    return 1 if bad else 0


def batches(items, b):
    return [items[i:i + b] for i in range(0, len(items), b)]


def cpu_seconds(pid=None):
    """CPU time (user + system, every thread) of this process, or of process pid."""
    if pid is None:
        import resource
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(run_batch, groups, pid=None):
    """Wall seconds, generated tokens and CPU seconds (this process's, or pid's) of
    run_batch over groups, after a warm-up on the first two sentences."""
    run_batch(groups[0][:2])
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    tokens = sum(run_batch(g) for g in groups)
    return time.perf_counter() - t0, tokens, cpu_seconds(pid) - c0


def report(engine, a, n, seconds, tokens, cpu, **extra):
    line = {"engine": engine, "model": os.path.basename(a.hf or a.model), "batch": a.batch,
            "beams": a.beams, "new_tokens": a.new_tokens, "sentences": n,
            "seconds": round(seconds, 3), "sent_per_s": round(n / seconds, 3),
            "cpu_seconds": round(cpu, 3), "sent_per_cpu_s": round(n / max(cpu, 1e-3), 3),
            "mean_generated": round(tokens / n, 2), "threads": a.threads}
    line.update(extra)
    print(json.dumps(line))


def cmd_torch(a):
    set_threads(a.threads)
    tok, model = load_hf(a.model)
    pad = model.config.pad_token_id
    texts = sentences(a.sentences)

    def run(group):
        out = hf_generate(tok, model, group, a.beams, a.new_tokens)
        return sum(len(strip_ids(r, pad, None)) for r in out)

    seconds, tokens, cpu = timed(run, batches(texts, a.batch))
    report("torch", a, len(texts), seconds, tokens, cpu, dtype="fp32")


def cmd_ct2(a):
    import ctranslate2
    import transformers as tf
    tok = tf.AutoTokenizer.from_pretrained(a.hf)
    tr = ctranslate2.Translator(a.model, device="cpu", compute_type=a.compute_type,
                                intra_threads=a.threads, inter_threads=1)
    texts = sentences(a.sentences)
    toks = [tok.convert_ids_to_tokens(tok(t)["input_ids"]) for t in texts]

    def run(group):
        res = tr.translate_batch(group, beam_size=a.beams, max_decoding_length=a.new_tokens,
                                 max_batch_size=a.batch)
        # CTranslate2's hypotheses leave the eos out: count it where the output stopped early
        return sum(len(r.hypotheses[0]) + (len(r.hypotheses[0]) < a.new_tokens) for r in res)

    seconds, tokens, cpu = timed(run, batches(toks, a.batch))
    report("ct2", a, len(texts), seconds, tokens, cpu,
           dtype="int8" if a.compute_type == "int8" else "fp32",
           ct2=ctranslate2.__version__)


def cmd_inferd(a):
    """The daemon at a.url (inferd serve): a.batch requests in flight (a closed loop of that
    many clients, as continuous batching serves them), an untimed warm-up first; CPU time is
    the daemon's."""
    import concurrent.futures
    texts = sentences(a.sentences)
    params = {"num_beams": a.beams, "max_new_tokens": a.new_tokens, "return_tensors": True}

    def post(text):
        return len(post_inferd(a.url, text, params)[0]["generated_token_ids"]) - 1

    pid = daemon_pid(a.url)
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.batch) as pool:
        seconds, tokens, cpu = timed(lambda group: sum(pool.map(post, group)), [texts], pid)
    report(a.label, a, len(texts), seconds, tokens, cpu, dtype=a.compute_type)


def daemon_pid(url):
    """The pid of the process listening on url's port (ss -ltnp)."""
    import re
    import subprocess
    import urllib.parse
    port = urllib.parse.urlparse(url).port
    out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port], capture_output=True,
                         text=True, check=True).stdout
    return int(re.search(r"pid=(\d+)", out).group(1))


def cmd_summarize(a):
    """Medians over rounds of sentences per wall second and per CPU second, per model,
    batch, beams and engine, as Markdown tables with the ratios."""
    cols = ["torch-fp32", "ct2-fp32", "inferd-fp32", "ct2-int8", "inferd-int8"]
    for metric in ("sent_per_s", "sent_per_cpu_s"):
        print("\n%s (median over rounds)\n" % metric)
        rows = rows_of(a.files, metric)
        base = any(c.startswith("inferd-base") for r in rows.values() for c in r)
        table(rows, cols + (["inferd-base-fp32", "inferd-base-int8"] if base else []), base)


def rows_of(files, metric):
    rows = {}
    for path in files:
        for line in open(path):
            r = json.loads(line)
            if r.get("engine") in ("torch", "ct2", "inferd", "inferd-base") and metric in r:
                key = (r["model"], r["batch"], r["beams"])
                rows.setdefault(key, {}).setdefault(r["engine"] + "-" + r["dtype"], []).append(
                    r[metric])
    return rows


def table(rows, cols, base=False):
    import statistics
    extra = " inferd/base fp32 | inferd/base int8 |" if base else ""
    print("| model | batch | beams | " + " | ".join(cols) +
          " | inferd/ct2 fp32 | inferd/torch fp32 | inferd/ct2 int8 |" + extra)
    print("|" + " --- |" * (len(cols) + 6 + (2 if base else 0)))
    for key in sorted(rows):
        med = {c: statistics.median(v) for c, v in rows[key].items()}

        def ratio(x, y):
            return "%.2f" % (med[x] / med[y]) if x in med and y in med else "-"
        print("| %s | %d | %d | " % key +
              " | ".join("%.2f" % med[c] if c in med else "-" for c in cols) +
              " | %s | %s | %s |" % (ratio("inferd-fp32", "ct2-fp32"),
                                     ratio("inferd-fp32", "torch-fp32"),
                                     ratio("inferd-int8", "ct2-int8")) +
              (" %s | %s |" % (ratio("inferd-fp32", "inferd-base-fp32"),
                               ratio("inferd-int8", "inferd-base-int8")) if base else ""))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("tokenizers")
    m.add_argument("marian")
    t = sub.add_parser("sentences")
    t.add_argument("n", type=int)
    t.add_argument("out")
    u = sub.add_parser("summarize")
    u.add_argument("files", nargs="+")
    c = sub.add_parser("convert")
    c.add_argument("model")
    c.add_argument("out")
    for name in ("check", "torch", "ct2", "inferd"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--hf")
        s.add_argument("--sentences", required=True)
        s.add_argument("--new-tokens", type=int, default=32)
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--batch", type=int, default=1)
        s.add_argument("--beams", type=int, default=1)
        s.add_argument("--inferd")
        s.add_argument("--ct2")
        s.add_argument("--compute-type", default="float32")
        s.add_argument("--url")
        s.add_argument("--label", default="inferd")
    a = p.parse_args()
    return {"make": cmd_make, "sentences": cmd_sentences, "convert": cmd_convert, "check": cmd_check, "torch": cmd_torch,
            "ct2": cmd_ct2, "inferd": cmd_inferd,
            "summarize": cmd_summarize}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
