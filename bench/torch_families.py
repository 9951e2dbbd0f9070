#!/usr/bin/env python3
"""PyTorch eager (transformers' own model classes) anchor for bench/run_families.sh.

The issue-14 families at realistic sizes, random weights: run with a venv that has torch and
transformers (tools/refgen/requirements.txt's pins; run_families.sh uses /work/venv-refgen).

  make OUT_DIR TOKENIZERS_DIR [NAME ...]
      Writes one model per NAME (default: all of MODELS below) into OUT_DIR/NAME: the Hub
      checkpoint's config.json (its shapes; fewer layers where MODELS says so), the model built
      by transformers' class from that config with torch.manual_seed(SEED) (transformers' own
      initialisation: normal(0, initializer_range) weights), saved with save_pretrained as
      safetensors (fp32), and a tokenizer from tests/data/tokenizers.tar.xz whose ids fit in
      the vocabulary (vocab_size stays the Hub's: the embedding and the LM head are a large
      share of these models' cost). A directory whose model.safetensors exists is kept.

  encoder --model DIR [--shapes 1x128,8x128] [--threads 2] [--min-runs 5] [--min-seconds 5]
      The model class of config.json's architectures, torch.inference_mode(), a forward pass of
      (batch, seq) token ids as `inferd bench` makes them (first 101, last 102, the others
      random in 1000..29999, the mask all ones), warm-up runs, then timed runs until at least
      --min-runs runs and --min-seconds seconds; one JSON line per shape in `inferd bench`'s
      form: {"engine":"torch",..,"batch":8,"seq":128,"seq_per_s":..,"median_ms":..}.
      An embedding model (MPNetModel) adds sentence-transformers' mean pooling and
      normalisation, as its pipeline runs them.

  decoder --model DIR [--prompts 128] [--context 128] [--streams 1] [--steps 16] [--warmup 2]
          [--threads 2] [--min-runs 3] [--min-seconds 3] [--check FILE [--tolerance T]]
      The *ForCausalLM class with transformers' DynamicCache, as generate() runs it, timed as
      bench-generate times inferd (bench/bench_generate.c): prefill (a P-token prompt, the
      last position's logits: tokens/s = P / median) and decode (S streams prefilled with
      --context-token prompts untimed, then --warmup and --steps greedy steps of all streams,
      each timed including the argmax: tokens/s = S / median step). Prompt ids are
      bench-generate's (mulberry32 seeded per stream, in 100 .. vocab - 101).
      --check FILE (bench-generate --dump-check FILE): the largest |difference| of the logits
      after the prefill and after one decode step (fed inferd's token), and how many of the 16
      greedy ids agree, as one "metric":"check" line; exit status 1 when a difference is above
      the tolerance (default 1e-3 x the largest |logit|).

  encoder --model DIR --check FILE --task TASK --request JSON [--tolerance 1e-4]
      transformers.pipeline(TASK) of the model on the request ({"inputs", "parameters"})
      against FILE, `inferd run --task TASK`'s answer to it: the labels equal and the largest
      |difference| of the numbers as one "metric":"check" line; exit status 1 otherwise.

attn_implementation is transformers' default for the class on CPU (sdpa where the class has
it), the way a user's from_pretrained runs it; "attn" in every line says which.
"""

import argparse
import json
import os
import shutil
import sys
import time

SEED = 14
M32 = 0xFFFFFFFF

# Hub config.json of each model (the fields that matter; transformers' config class defaults
# for the rest), the architecture saved, the tokenizer directory from tests/data/tokenizers,
# and the layers kept when the full model is too slow for the run ("layers_of" the original).
MODELS = {
    "deberta-v3-base": {
        "arch": "DebertaV2ForSequenceClassification", "tokenizer": "bert-uncased",
        "config": {
            "model_type": "deberta-v2", "vocab_size": 128100, "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 0,
            "relative_attention": True, "max_relative_positions": -1, "position_buckets": 256,
            "norm_rel_ebd": "layer_norm", "share_att_key": True, "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False, "layer_norm_eps": 1e-7, "pad_token_id": 0,
            "id2label": {"0": "entailment", "1": "neutral", "2": "contradiction"},
            "label2id": {"entailment": 0, "neutral": 1, "contradiction": 2}},
    },
    "all-mpnet-base-v2": {
        "arch": "MPNetModel", "tokenizer": "bert-uncased", "sentence_transformers": True,
        "config": {
            "model_type": "mpnet", "vocab_size": 30527, "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "hidden_act": "gelu", "max_position_embeddings": 514, "layer_norm_eps": 1e-5,
            "relative_attention_num_buckets": 32, "pad_token_id": 1, "bos_token_id": 0,
            "eos_token_id": 2},
    },
    "modernbert-base": {
        "arch": "ModernBertForSequenceClassification", "tokenizer": "gpt2",
        "config": {
            "model_type": "modernbert", "vocab_size": 50368, "hidden_size": 768,
            "intermediate_size": 1152, "num_hidden_layers": 22, "num_attention_heads": 12,
            "hidden_activation": "gelu", "max_position_embeddings": 8192, "norm_eps": 1e-5,
            "norm_bias": False, "global_rope_theta": 160000.0, "local_rope_theta": 10000.0,
            "global_attn_every_n_layers": 3, "local_attention": 128, "attention_bias": False,
            "mlp_bias": False, "classifier_pooling": "mean", "classifier_bias": False,
            "classifier_activation": "gelu", "pad_token_id": 50283, "bos_token_id": 50281,
            "eos_token_id": 50282, "cls_token_id": 50281, "sep_token_id": 50282,
            "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
            "label2id": {"NEGATIVE": 0, "POSITIVE": 1}},
    },
    "qwen3-0.6b": {
        "arch": "Qwen3ForCausalLM", "tokenizer": "qwen3",
        "config": {
            "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024,
            "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
            "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
            "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "rope_scaling": None, "attention_bias": False, "tie_word_embeddings": True,
            "use_sliding_window": False, "sliding_window": None, "max_window_layers": 28,
            "bos_token_id": 151643, "eos_token_id": 151645},
    },
    "gemma-3-1b": {
        "arch": "Gemma3ForCausalLM", "tokenizer": "llama3",
        "config": {
            "model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 1152,
            "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "rope_scaling": None, "sliding_window": 512,
            "sliding_window_pattern": 6, "query_pre_attn_scalar": 256,
            "attn_logit_softcapping": None, "final_logit_softcapping": None,
            "attention_bias": False, "tie_word_embeddings": True, "pad_token_id": 0,
            "bos_token_id": 2, "eos_token_id": 1},
    },
    # Phi-3.5-mini-instruct's shape and LongRoPE with 8 of its 32 layers: the full 3.8B
    # parameters are 15 GB in fp32 and a 128-token prefill takes ~10 s per run on 2 cores
    "phi-3.5-mini-8l": {
        "arch": "Phi3ForCausalLM", "tokenizer": "llama2", "layers_of": 32,
        "config": {
            "model_type": "phi3", "vocab_size": 32064, "hidden_size": 3072,
            "intermediate_size": 8192, "num_hidden_layers": 8, "num_attention_heads": 32,
            "num_key_value_heads": 32, "hidden_act": "silu", "max_position_embeddings": 131072,
            "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": False,
            "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000,
            # 48 factors per set (head_dim 96 / 2), growing as Phi-3.5's do
            "rope_scaling": {"type": "longrope",
                             "short_factor": [1.0 + 0.05 * i / 47 for i in range(48)],
                             "long_factor": [1.0 + 40.0 * (i / 47) ** 2 for i in range(48)]}},
    },
}


# ---- make ---------------------------------------------------------------------------------


def make(out_root, tok_root, names):
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    torch.set_num_threads(2)
    for name in names or list(MODELS):
        spec = MODELS[name]
        out = os.path.join(out_root, name)
        if os.path.exists(os.path.join(out, "model.safetensors")):
            continue
        tmp = out + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        tdir = os.path.join(tok_root, spec["tokenizer"])
        for f in os.listdir(tdir):
            if os.path.isfile(os.path.join(tdir, f)):
                shutil.copy(os.path.join(tdir, f), tmp)
        n_tok = len(AutoTokenizer.from_pretrained(tmp))
        cfg = dict(spec["config"], architectures=[spec["arch"]], torch_dtype="float32")
        assert n_tok <= cfg["vocab_size"], (name, n_tok, cfg["vocab_size"])
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        config = AutoConfig.from_pretrained(tmp)
        torch.manual_seed(SEED)
        model = getattr(transformers, spec["arch"])(config).eval()
        model.save_pretrained(tmp, safe_serialization=True)
        with open(os.path.join(tmp, "config.json"), "w") as f:  # the Hub's form again
            cfg["transformers_version"] = transformers.__version__
            json.dump(cfg, f, indent=2)
        if spec.get("sentence_transformers"):
            write_st(tmp, cfg["hidden_size"])
        os.replace(tmp, out)
        n = sum(p.numel() for p in model.parameters())
        print("made %s: %s, %.0fM parameters" % (out, spec["arch"], n / 1e6), file=sys.stderr)


def write_st(out, hidden):
    """all-mpnet-base-v2's sentence-transformers modules: mean pooling, then Normalize."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    json.dump(modules, open(os.path.join(out, "modules.json"), "w"), indent=2)
    json.dump({"max_seq_length": 384, "do_lower_case": False},
              open(os.path.join(out, "sentence_bert_config.json"), "w"), indent=2)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    json.dump({"word_embedding_dimension": hidden, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False},
              open(os.path.join(out, "1_Pooling", "config.json"), "w"), indent=2)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)


# ---- timing helpers -----------------------------------------------------------------------


def machine_busy_s():
    """CPU seconds every process of the machine used (/proc/stat), None without it."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def own_cpu_s():
    t = os.times()
    return t.user + t.system


class Timer:
    """foreign_cpu: the share of the machine's CPU other processes took while timing."""

    def __enter__(self):
        self.busy, self.own, self.start = machine_busy_s(), own_cpu_s(), time.perf_counter()
        return self

    def foreign(self):
        busy, elapsed = machine_busy_s(), time.perf_counter() - self.start
        if busy is None or self.busy is None or elapsed <= 0:
            return None
        f = (busy - self.busy - (own_cpu_s() - self.own)) / elapsed / os.cpu_count()
        return round(max(f, 0.0), 3)

    def __exit__(self, *a):
        return False


def percentile(xs, q):
    xs = sorted(xs)
    k = q * (len(xs) - 1)
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def timed_runs(fn, warmup, min_runs, min_seconds):
    for _ in range(max(warmup, 1)):
        fn()
    times = []
    with Timer() as t:
        start = time.perf_counter()
        while len(times) < min_runs or time.perf_counter() - start < min_seconds:
            a = time.perf_counter()
            fn()
            times.append((time.perf_counter() - a) * 1e3)
        foreign = t.foreign()
    return times, foreign


def stats(times):
    return {"runs": len(times), "median_ms": round(percentile(times, 0.5), 3),
            "p90_ms": round(percentile(times, 0.9), 3), "min_ms": round(min(times), 3)}


def load(model_dir):
    import torch
    import transformers

    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    t0 = time.perf_counter()
    cls = getattr(transformers, cfg["architectures"][0])
    model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    load_ms = (time.perf_counter() - t0) * 1e3
    attn = getattr(model.config, "_attn_implementation", None)
    return model, cfg, load_ms, attn


def base_line(args, cfg, load_ms, attn):
    import torch
    import transformers

    return {"engine": "torch", "model": os.path.basename(os.path.normpath(args.model)),
            "arch": cfg["model_type"], "dtype": "fp32", "threads": args.threads,
            "load_ms": round(load_ms), "attn": attn, "torch": torch.__version__,
            "transformers": transformers.__version__}


# ---- encoder ------------------------------------------------------------------------------


def bench_rand01(state):
    """cli/bench.c's bench_rand01 (mulberry32)."""
    state[0] = (state[0] + 0x6D2B79F5) & M32
    t = state[0]
    t = ((t ^ (t >> 15)) * (t | 1)) & M32
    t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32
    return ((t ^ (t >> 14)) & M32) / 4294967296.0


def max_diff(a, b):
    """The largest |difference| of two pipeline answers' numbers; inf when their shape,
    labels or other strings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf")
        return max((max_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        return max((max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b))
    return 0.0 if a == b else float("inf")


def check_encoder(args, model, cfg, load_ms, attn):
    from transformers import AutoTokenizer, pipeline

    req = json.loads(args.request)
    p = pipeline(args.task, model=model, tokenizer=AutoTokenizer.from_pretrained(args.model),
                 device="cpu")
    want = json.loads(json.dumps(p(req["inputs"], **req.get("parameters", {})),
                                 default=lambda x: x.tolist() if hasattr(x, "tolist") else float(x)))
    with open(args.check) as f:
        got = json.load(f)
    d = max_diff(got, want)
    tol = args.tolerance if args.tolerance is not None else 1e-4
    line = base_line(args, cfg, load_ms, attn)
    line.update({"metric": "check", "task": args.task, "max_abs_diff": d, "tolerance": tol,
                 "ok": d <= tol})
    print(json.dumps(line), flush=True)
    return line["ok"]


def encoder(args):
    import torch

    torch.set_num_threads(args.threads)
    model, cfg, load_ms, attn = load(args.model)
    if args.check:
        sys.exit(0 if check_encoder(args, model, cfg, load_ms, attn) else 1)
    pooled = cfg["architectures"][0].endswith("Model")
    for shape in args.shapes.split(","):
        b, s = (int(x) for x in shape.split("x"))
        state = [0]
        ids = [[101 if j == 0 else 102 if j == s - 1 else 1000 + int(bench_rand01(state) * 29000.0)
                for j in range(s)] for _ in range(b)]
        ids = torch.tensor(ids)
        mask = torch.ones_like(ids)

        def run():
            with torch.inference_mode():
                out = model(input_ids=ids, attention_mask=mask)
                if pooled:  # sentence-transformers: mean over the mask, then L2 normalize
                    h = out.last_hidden_state
                    m = mask.unsqueeze(-1).to(h.dtype)
                    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                    return torch.nn.functional.normalize(e, p=2, dim=1)
                return out.logits

        times, foreign = timed_runs(run, 2, args.min_runs, args.min_seconds)
        line = base_line(args, cfg, load_ms, attn)
        line.update({"batch": b, "seq": s, "seq_per_s": round(b / (percentile(times, 0.5) * 1e-3), 3)})
        line.update(stats(times))
        line["foreign_cpu"] = foreign
        print(json.dumps(line), flush=True)


# ---- decoder ------------------------------------------------------------------------------


def prompt_ids(stream, n, vocab):
    """bench_generate.c's prompt_ids: mulberry32 seeded (stream + 1) * 0x9e3779b1."""
    state = [((stream + 1) * 0x9E3779B1) & M32]
    return [100 + int(bench_rand01(state) * (vocab - 200)) for _ in range(n)]


class Decoder:
    def __init__(self, model, vocab):
        self.m, self.vocab = model, vocab

    def prompts(self, streams, n):
        import torch

        return torch.tensor([prompt_ids(s, n, self.vocab) for s in range(streams)])

    def forward(self, ids, cache):
        """Logits of the last position of every row; the cache grows by ids' length."""
        import torch

        past = cache.get_seq_length()
        pos = torch.arange(past, past + ids.shape[1]).unsqueeze(0).expand(ids.shape[0], -1)
        out = self.m(input_ids=ids, past_key_values=cache, position_ids=pos, use_cache=True,
                     logits_to_keep=1)
        return out.logits[:, -1]

    def cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.m.config)


def decoder(args):
    import torch

    torch.set_num_threads(args.threads)
    model, cfg, load_ms, attn = load(args.model)
    d = Decoder(model, cfg["vocab_size"])
    if args.check:
        sys.exit(0 if check(d, args, cfg, load_ms, attn) else 1)
    metrics = args.metrics.split(",")
    with torch.inference_mode():
        if "prefill" in metrics:
            for p in (int(x) for x in args.prompts.split(",")):
                ids = d.prompts(1, p)

                def run():
                    d.forward(ids, d.cache())

                times, foreign = timed_runs(run, args.warmup, args.min_runs, args.min_seconds)
                line = base_line(args, cfg, load_ms, attn)
                line.update({"metric": "prefill", "streams": 1, "prompt": p,
                             "tokens_per_s": round(p / (percentile(times, 0.5) * 1e-3), 3)})
                line.update(stats(times))
                line["foreign_cpu"] = foreign
                print(json.dumps(line), flush=True)
        if "decode" in metrics:
            for s in (int(x) for x in args.streams.split(",")):
                cache = d.cache()
                nxt = torch.argmax(d.forward(d.prompts(s, args.context), cache), -1)
                ids, times = [int(nxt[0])], []
                for _ in range(args.warmup):
                    nxt = torch.argmax(d.forward(nxt.unsqueeze(1), cache), -1)
                    ids.append(int(nxt[0]))
                with Timer() as t:
                    for _ in range(args.steps):
                        a = time.perf_counter()
                        nxt = torch.argmax(d.forward(nxt.unsqueeze(1), cache), -1)
                        times.append((time.perf_counter() - a) * 1e3)
                        ids.append(int(nxt[0]))
                    foreign = t.foreign()
                line = base_line(args, cfg, load_ms, attn)
                line.update({"metric": "decode", "streams": s, "prompt": args.context,
                             "steps": args.steps,
                             "tokens_per_s": round(s / (percentile(times, 0.5) * 1e-3), 3)})
                line.update(stats(times))
                line["foreign_cpu"] = foreign
                line["greedy_ids"] = ids[:16]
                print(json.dumps(line), flush=True)


def check(d, args, cfg, load_ms, attn):
    """bench-generate --dump-check's logits against this model's."""
    import torch

    ref = json.load(open(args.check))
    n = ref["prompt"]
    with torch.inference_mode():
        cache = d.cache()
        logits = d.forward(d.prompts(1, n), cache)[0]
        scale = logits.abs().max().item()
        d_prefill = (logits - torch.tensor(ref["prefill_logits"])).abs().max().item()
        theirs = ref["greedy_ids"]
        logits = d.forward(torch.tensor([[theirs[0]]]), cache)[0]  # the token inferd fed
        d_decode = (logits - torch.tensor(ref["decode_logits"])).abs().max().item()
        cache, ids = d.cache(), []
        nxt = torch.argmax(d.forward(d.prompts(1, n), cache), -1)
        while len(ids) < len(theirs):
            ids.append(int(nxt[0]))
            nxt = torch.argmax(d.forward(nxt.unsqueeze(1), cache), -1)
    agree = 0
    while agree < len(ids) and ids[agree] == theirs[agree]:
        agree += 1
    tol = args.tolerance if args.tolerance is not None else 1e-3 * scale
    line = base_line(args, cfg, load_ms, attn)
    line.update({"metric": "check", "prompt": n, "max_abs_logit": round(scale, 6),
                 "prefill_max_abs_diff": d_prefill, "decode_max_abs_diff": d_decode,
                 "tolerance": tol, "greedy_ids_agree": agree, "greedy_ids": len(ids),
                 "ok": d_prefill <= tol and d_decode <= tol})
    print(json.dumps(line), flush=True)
    return line["ok"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("tokenizers")
    m.add_argument("names", nargs="*")
    for name in ("encoder", "decoder"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--min-runs", type=int, default=5 if name == "encoder" else 3)
        s.add_argument("--min-seconds", type=float, default=5 if name == "encoder" else 3)
    e = sub.choices["encoder"]
    e.add_argument("--shapes", default="1x128,8x128")
    e.add_argument("--check")
    e.add_argument("--task")
    e.add_argument("--request")
    e.add_argument("--tolerance", type=float)
    dec = sub.choices["decoder"]
    dec.add_argument("--metrics", default="prefill,decode")
    dec.add_argument("--prompts", default="128")
    dec.add_argument("--context", type=int, default=128)
    dec.add_argument("--streams", default="1")
    dec.add_argument("--steps", type=int, default=16)
    dec.add_argument("--warmup", type=int, default=2)
    dec.add_argument("--check")
    dec.add_argument("--tolerance", type=float)
    a = p.parse_args()
    if a.cmd == "make":
        make(a.out, a.tokenizers, a.names)
    elif a.cmd == "encoder":
        encoder(a)
    else:
        decoder(a)


if __name__ == "__main__":
    main()
