#!/usr/bin/python3
"""PyTorch (CPU) anchor for bench/bench_generate.c: greedy generation with a KV cache.

A hand-written eager GPT-2 (GPT2LMHeadModel) and LLaMA (LlamaForCausalLM: RMSNorm, default
RoPE, grouped-query attention, SwiGLU), written as transformers' eager code computes them,
with torch only (transformers is not needed), loading the same config.json + model.safetensors
that bench-generate loads (bench/make_random_decoder.c writes them). What a user would write
without transformers, with the obvious care: q|k|v and gate|up in one matmul each (inferd
fuses them too), a preallocated KV cache per layer, (batch, kv heads, positions, head_dim),
written in place (no torch.cat per step), grouped-query attention without repeating the keys,
logits of the last position only, torch.inference_mode(), torch.set_num_threads(threads).

Metrics, timed exactly as bench-generate times them (see its header), one JSON line each:
  prefill  a P-token prompt in one forward pass (the cache is reused, as a server slot)
  ttft     the --context-token prompt prefilled and the first token picked (argmax)
  decode   S streams with their --context-token prompts prefilled as one batch (untimed;
           all prompts have the same length, so the batch needs no padding), then --warmup
           and --steps greedy steps of all S streams in one forward pass each, timed per step
           including the argmax: tokens/s = S / median step
  {"engine":"torch","model":..,"arch":"llama","threads":2,"metric":"decode","streams":16,
   "prompt":128,"steps":64,"runs":64,"tokens_per_s":..,"median_ms":..,"p90_ms":..,
   "min_ms":..,"load_ms":..,"foreign_cpu":..,"greedy_ids":[..],"version":..,"blas":..}
Prompts: the same token ids as bench-generate (mulberry32 seeded per stream).

--check FILE (bench-generate --dump-check FILE): compares inferd's logits of stream 0 after
its prefill and after the first decode step (fed the same token) with this model's, prints
the largest absolute difference of each and how many greedy ids agree, as a JSON line with
"metric":"check", and exits 1 when a difference passes --tolerance (1e-3): a cheap check that
both implementations compute the same model.

BLAS: as shared/anchors/torch_bert.py, re-executes itself with Debian's OpenMP OpenBLAS
(libopenblas0-openmp) first on LD_LIBRARY_PATH unless --blas system; "blas" says which.

usage: torch_decoder.py --model DIR [--threads 2] [--metrics prefill,ttft,decode]
         [--prompts 128,512] [--context 128] [--streams 1,16] [--steps 64] [--warmup 2]
         [--min-runs 3] [--min-seconds 3] [--check FILE [--tolerance 1e-3]]
"""

import argparse
import json
import math
import os
import resource
import struct
import sys
import time

GREEDY_IDS = 16


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch CPU decoder anchor (greedy generation)")
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--metrics", default="prefill,ttft,decode")
    p.add_argument("--prompts", default="128,512")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--streams", default="1,16")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-runs", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-runs", type=int, default=1000)
    p.add_argument("--check", metavar="FILE")
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--blas", choices=("openmp", "system"), default="openmp",
                   help="openmp: Debian's OpenMP OpenBLAS (default); system: libblas.so.3 as installed")
    a = p.parse_args()
    a.metrics = set(a.metrics.split(",")) if a.metrics else set()
    a.prompts = [int(x) for x in a.prompts.split(",") if x]
    a.streams = [int(x) for x in a.streams.split(",") if x]
    return a


def prefer_openmp_blas():
    """Re-execute with Debian's OpenMP OpenBLAS first on the library path (torch_bert.py does too)."""
    import sysconfig
    folder = os.path.join("/usr/lib", sysconfig.get_config_var("MULTIARCH") or "", "openblas-openmp")
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if folder in paths or not os.path.isfile(os.path.join(folder, "libblas.so.3")):
        return
    os.environ["LD_LIBRARY_PATH"] = ":".join([folder] + paths)
    os.execv(sys.executable, [sys.executable] + sys.argv)


ARGS = parse_args()
if ARGS.blas == "openmp":
    prefer_openmp_blas()
# Thread pools read these when the libraries load, so set them before importing torch.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ---- safetensors ------------------------------------------------------------------------

def load_safetensors(path):
    """{name: tensor} of a .safetensors file (F32 only), views into one buffer read at once."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = bytearray(os.path.getsize(path) - 8 - n)
        f.readinto(memoryview(buf))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {info['dtype']}; this anchor reads F32 only")
        start, end = info["data_offsets"]
        t = torch.frombuffer(buf, dtype=torch.float32, count=(end - start) // 4, offset=start)
        out[name] = t.view(info["shape"]) if info["shape"] else t
    return out


# ---- the models ---------------------------------------------------------------------------

class Cache:
    """Per layer, keys and values (batch, kv heads, max positions, head_dim); pos of them used."""

    def __init__(self, layers, batch, kv_heads, max_pos, head_dim):
        self.k = [torch.zeros(batch, kv_heads, max_pos, head_dim) for _ in range(layers)]
        self.v = [torch.zeros(batch, kv_heads, max_pos, head_dim) for _ in range(layers)]
        self.batch, self.pos = batch, 0

    def append(self, layer, k, v):
        """Stores k, v (batch, kv heads, T, head_dim) at the next T positions (the caller advances
        pos once per step); returns the keys and values of every cached position."""
        t = k.shape[2]
        self.k[layer][:, :, self.pos:self.pos + t] = k
        self.v[layer][:, :, self.pos:self.pos + t] = v
        return self.k[layer][:, :, :self.pos + t], self.v[layer][:, :, :self.pos + t]


def attend(q, k, v, pos, scale):
    """softmax(q k^T scale + causal mask) v as transformers' eager attention, for q (B, heads, T,
    hd) at positions pos .. pos + T - 1 over k, v (B, kv heads, pos + T, hd); the query heads of a
    kv head are stacked, so its keys are read once (no repeat_kv copy)."""
    b, nh, t, hd = q.shape
    nkv, keys = k.shape[1], k.shape[2]
    g = nh // nkv
    qg = q.reshape(b, nkv, g * t, hd)  # head h = kv head h // g, rows (group member, token)
    scores = torch.matmul(qg, k.transpose(-1, -2)) * scale  # (B, nkv, g T, keys)
    if t > 1:
        i = torch.arange(t).view(t, 1) + pos
        j = torch.arange(keys).view(1, keys)
        mask = torch.zeros(t, keys).masked_fill_(j > i, torch.finfo(torch.float32).min)
        scores = (scores.view(b, nkv, g, t, keys) + mask).view(b, nkv, g * t, keys)
    p = torch.softmax(scores, dim=-1, dtype=torch.float32)
    return torch.matmul(p, v).view(b, nh, t, hd)


class Llama:
    """LlamaForCausalLM, eager: RMSNorm, default RoPE (rotate_half), GQA, SwiGLU."""

    arch = "llama"

    def __init__(self, cfg, w):
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads") or self.nh
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.n_layers = cfg["num_hidden_layers"]
        self.eps = cfg["rms_norm_eps"]
        self.max_pos = cfg["max_position_embeddings"]
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            sys.exit("torch_decoder.py: only the default RoPE is implemented")
        theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))
        self.embed = w["model.embed_tokens.weight"]
        self.head = self.embed if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
        self.norm = w["model.norm.weight"]
        self.layers = []
        for i in range(self.n_layers):
            p = f"model.layers.{i}."
            self.layers.append(dict(
                ln1=w[p + "input_layernorm.weight"], ln2=w[p + "post_attention_layernorm.weight"],
                qkv=torch.cat([w[p + "self_attn.q_proj.weight"], w[p + "self_attn.k_proj.weight"],
                               w[p + "self_attn.v_proj.weight"]]),
                o=w[p + "self_attn.o_proj.weight"],
                gu=torch.cat([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]),
                down=w[p + "mlp.down_proj.weight"]))
        self.vocab = self.embed.shape[0]

    def rmsnorm(self, x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    @staticmethod
    def rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def new_cache(self, batch, max_pos):
        return Cache(self.n_layers, batch, self.nkv, max_pos, self.hd)

    def forward(self, ids, cache):
        """Logits (B, vocab) of the last of ids' (B, T) tokens, which join the cache."""
        b, t = ids.shape
        pos, q_dim, kv_dim = cache.pos, self.nh * self.hd, self.nkv * self.hd
        freqs = torch.arange(pos, pos + t, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()  # (T, hd)
        x = F.embedding(ids, self.embed)
        for i, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["ln1"])
            q, k, v = F.linear(h, L["qkv"]).split([q_dim, kv_dim, kv_dim], dim=-1)
            q = self.rotate(q.view(b, t, self.nh, self.hd).transpose(1, 2), cos, sin)
            k = self.rotate(k.view(b, t, self.nkv, self.hd).transpose(1, 2), cos, sin)
            v = v.view(b, t, self.nkv, self.hd).transpose(1, 2)
            k, v = cache.append(i, k, v)
            att = attend(q, k, v, pos, self.hd ** -0.5)
            x = x + F.linear(att.transpose(1, 2).reshape(b, t, q_dim), L["o"])
            gate, up = F.linear(self.rmsnorm(x, L["ln2"]), L["gu"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, L["down"])
        cache.pos += t
        return F.linear(self.rmsnorm(x[:, -1], self.norm), self.head)


class Gpt2:
    """GPT2LMHeadModel, eager: LayerNorm, learned positions, Conv1D (x W + b), gelu_new, tied head."""

    arch = "gpt2"

    def __init__(self, cfg, w):
        self.H = cfg["n_embd"]
        self.nh = cfg["n_head"]
        self.hd = self.H // self.nh
        self.nkv = self.nh
        self.n_layers = cfg["n_layer"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.max_pos = cfg["n_positions"]
        if cfg.get("activation_function", "gelu_new") != "gelu_new":
            sys.exit("torch_decoder.py: only gelu_new is implemented for GPT-2")
        self.wte, self.wpe = w["transformer.wte.weight"], w["transformer.wpe.weight"]
        self.ln_f = (w["transformer.ln_f.weight"], w["transformer.ln_f.bias"])
        self.layers = []
        for i in range(self.n_layers):
            p = f"transformer.h.{i}."
            self.layers.append({k: w[p + n] for k, n in dict(
                ln1w="ln_1.weight", ln1b="ln_1.bias", ln2w="ln_2.weight", ln2b="ln_2.bias",
                qkv_w="attn.c_attn.weight", qkv_b="attn.c_attn.bias",
                o_w="attn.c_proj.weight", o_b="attn.c_proj.bias",
                fc_w="mlp.c_fc.weight", fc_b="mlp.c_fc.bias",
                proj_w="mlp.c_proj.weight", proj_b="mlp.c_proj.bias").items()})
        self.vocab = self.wte.shape[0]

    @staticmethod
    def conv1d(x, weight, bias):
        """transformers' Conv1D: addmm(bias, x, weight) with weight (in, out)."""
        return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], -1)

    def new_cache(self, batch, max_pos):
        return Cache(self.n_layers, batch, self.nkv, max_pos, self.hd)

    def forward(self, ids, cache):
        b, t = ids.shape
        pos, H = cache.pos, self.H
        x = F.embedding(ids, self.wte) + self.wpe[pos:pos + t]
        for i, L in enumerate(self.layers):
            h = F.layer_norm(x, (H,), L["ln1w"], L["ln1b"], self.eps)
            q, k, v = self.conv1d(h, L["qkv_w"], L["qkv_b"]).split(H, dim=-1)
            q, k, v = (y.view(b, t, self.nh, self.hd).transpose(1, 2) for y in (q, k, v))
            k, v = cache.append(i, k, v)
            att = attend(q, k, v, pos, self.hd ** -0.5)
            x = x + self.conv1d(att.transpose(1, 2).reshape(b, t, H), L["o_w"], L["o_b"])
            h = F.layer_norm(x, (H,), L["ln2w"], L["ln2b"], self.eps)
            h = F.gelu(self.conv1d(h, L["fc_w"], L["fc_b"]), approximate="tanh")  # gelu_new
            x = x + self.conv1d(h, L["proj_w"], L["proj_b"])
        cache.pos += t
        return F.linear(F.layer_norm(x[:, -1], (H,), *self.ln_f, self.eps), self.wte)


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    w = load_safetensors(os.path.join(folder, "model.safetensors"))
    kinds = {"llama": Llama, "gpt2": Gpt2}
    if cfg.get("model_type") not in kinds:
        sys.exit(f"torch_decoder.py: model_type {cfg.get('model_type')!r} is not gpt2 or llama")
    m = kinds[cfg["model_type"]](cfg, w)
    m.weights = w  # keeps the file's buffer alive
    return m


# ---- prompts, timing ------------------------------------------------------------------------

M32 = 0xFFFFFFFF


def prompt_ids(stream, n, vocab):
    """bench_generate.c's prompt_ids: mulberry32 seeded (stream + 1) * 0x9e3779b1."""
    state = ((stream + 1) * 0x9E3779B1) & M32
    out = []
    for _ in range(n):
        state = (state + 0x6D2B79F5) & M32
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & M32
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32
        r = ((t ^ (t >> 14)) & M32) / 4294967296.0
        out.append(100 + int(r * (vocab - 200)))
    return out


def prompts(streams, n, vocab):
    return torch.tensor([prompt_ids(s, n, vocab) for s in range(streams)], dtype=torch.long)


def machine_busy_seconds():
    """CPU seconds the whole machine has spent (all cores), or None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMark:
    def __init__(self):
        self.busy, self.own, self.wall = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()

    def foreign(self):
        busy, wall = machine_busy_seconds(), time.perf_counter() - self.wall
        if self.busy is None or busy is None or wall <= 0:
            return None
        return max(0.0, busy - self.busy - (own_cpu_seconds() - self.own)) / wall / os.cpu_count()


def percentile(sorted_times, p):
    return sorted_times[min(len(sorted_times) - 1, max(0, math.ceil(p * len(sorted_times)) - 1))]


def blas_in_use():
    """Which BLAS library this process mapped (Debian switches libblas.so.3 by alternatives)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()}
    except OSError:
        return "unknown"
    for key in ("openblas", "mkl", "blis", "atlas"):
        hit = sorted(p for p in libs if key in p.lower())
        if hit:
            return os.path.basename(os.path.dirname(hit[0])) if key == "openblas" else key
    return "reference" if libs else "none"


# ---- measurements ---------------------------------------------------------------------------

class Bench:
    def __init__(self, a, model, name, load_ms, blas):
        self.a, self.m, self.name, self.load_ms, self.blas = a, model, name, load_ms, blas
        self.caches = {}

    def cache(self, batch):
        """One cache per batch size, reused across runs (a server's slots)."""
        if batch not in self.caches:
            need = max([self.a.context + self.a.warmup + self.a.steps + GREEDY_IDS] + self.a.prompts)
            self.caches[batch] = self.m.new_cache(batch, min(need, self.m.max_pos) if self.m.arch == "gpt2" else need)
        c = self.caches[batch]
        c.pos = 0
        return c

    def line(self, metric, streams, prompt, steps, times, foreign, ids=None):
        times = sorted(times)
        median = percentile(times, 0.5)
        tokens = streams if metric == "decode" else 1 if metric == "ttft" else prompt
        r = {"engine": "torch", "model": self.name, "arch": self.m.arch, "dtype": "fp32",
             "threads": self.a.threads, "metric": metric, "streams": streams, "prompt": prompt,
             "steps": steps, "runs": len(times), "tokens_per_s": round(tokens * 1e3 / median, 3),
             "median_ms": round(median, 3), "p90_ms": round(percentile(times, 0.9), 3),
             "min_ms": round(times[0], 3), "load_ms": round(self.load_ms),
             "foreign_cpu": None if foreign is None else round(foreign, 3)}
        if ids is not None:
            r["greedy_ids"] = ids
        r.update(version=torch.__version__, blas=self.blas)
        print(json.dumps(r), flush=True)

    def prefill(self, length, ttft):
        a, ids = self.a, prompts(1, length, self.m.vocab)
        for _ in range(max(1, a.warmup)):
            self.m.forward(ids, self.cache(1))
        times, mark = [], CpuMark()
        while (len(times) < a.min_runs or time.perf_counter() - mark.wall < a.min_seconds) \
                and len(times) < a.max_runs:
            t0 = time.perf_counter()
            logits = self.m.forward(ids, self.cache(1))
            if ttft:
                int(torch.argmax(logits[0]))
            times.append((time.perf_counter() - t0) * 1e3)
        self.line("ttft" if ttft else "prefill", 1, length, 0, times, mark.foreign())

    def decode(self, streams):
        a = self.a
        cache = self.cache(streams)
        nxt = torch.argmax(self.m.forward(prompts(streams, a.context, self.m.vocab), cache), dim=-1)
        ids = [int(nxt[0])]
        for _ in range(a.warmup):
            nxt = torch.argmax(self.m.forward(nxt[:, None], cache), dim=-1)
            ids.append(int(nxt[0]))
        times, mark = [], CpuMark()
        for _ in range(a.steps):
            t0 = time.perf_counter()
            nxt = torch.argmax(self.m.forward(nxt[:, None], cache), dim=-1)
            first = int(nxt[0])  # the ids leave the tensor, as a server's would
            times.append((time.perf_counter() - t0) * 1e3)
            ids.append(first)
        self.line("decode", streams, a.context, a.steps, times, mark.foreign(), ids[:GREEDY_IDS])

    def check(self, path, tolerance):
        """Compares with bench-generate --dump-check's logits; True when within tolerance."""
        with open(path) as f:
            ref = json.load(f)
        n = ref["prompt"]
        cache = self.cache(1)
        logits = self.m.forward(prompts(1, n, self.m.vocab), cache)[0]
        d_prefill = (logits - torch.tensor(ref["prefill_logits"])).abs().max().item()
        theirs = ref["greedy_ids"]
        logits = self.m.forward(torch.tensor([[theirs[0]]]), cache)[0]  # the token inferd fed
        d_decode = (logits - torch.tensor(ref["decode_logits"])).abs().max().item()
        cache, ids = self.cache(1), []
        nxt = torch.argmax(self.m.forward(prompts(1, n, self.m.vocab), cache), dim=-1)
        while len(ids) < len(theirs):
            ids.append(int(nxt[0]))
            if len(ids) < len(theirs):
                nxt = torch.argmax(self.m.forward(nxt[:, None], cache), dim=-1)
        same = sum(1 for x, y in zip(ids, theirs) if x == y)
        ok = d_prefill <= tolerance and d_decode <= tolerance
        print(json.dumps({"engine": "torch", "model": self.name, "arch": self.m.arch, "metric": "check",
                          "prompt": n, "prefill_max_abs_diff": d_prefill, "decode_max_abs_diff": d_decode,
                          "greedy_ids_same": same, "greedy_ids": len(theirs), "tolerance": tolerance,
                          "ok": ok}), flush=True)
        print(f"torch_decoder: {self.name}: inferd vs torch logits, max |difference| after the "
              f"{n}-token prefill {d_prefill:.2e}, after one decode step {d_decode:.2e}; greedy ids "
              f"{same}/{len(theirs)} the same ({'ok' if ok else 'OVER the tolerance'} {tolerance:g})",
              file=sys.stderr)
        return ok


def main(a):
    torch.set_num_threads(a.threads)
    blas = blas_in_use()
    if blas != "openblas-openmp":
        print(f"warning: torch uses BLAS '{blas}', not Debian's libopenblas0-openmp; "
              "its numbers understate PyTorch", file=sys.stderr)
    t0 = time.perf_counter()
    model = load_model(a.model)
    b = Bench(a, model, os.path.basename(os.path.normpath(a.model)), (time.perf_counter() - t0) * 1e3, blas)
    with torch.inference_mode():
        if a.check and not b.check(a.check, a.tolerance):
            return 1
        # One pass over the longest prompt first: glibc's malloc returns the large activations
        # of a step to the system (mmap/munmap, page faults on every step) until a larger
        # free has raised its dynamic thresholds, as it has in any warm server. Without this the
        # first shapes measured run up to 2x slower than the same shapes measured later.
        if a.metrics:
            b.m.forward(prompts(1, max(a.prompts + [a.context]), b.m.vocab), b.cache(1))
        if "prefill" in a.metrics:
            for p in a.prompts:
                b.prefill(p, False)
        if "ttft" in a.metrics:
            b.prefill(a.context, True)
        if "decode" in a.metrics:
            for s in a.streams:
                b.decode(s)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
