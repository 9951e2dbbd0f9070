#!/usr/bin/env python3
"""refgen: builds the tiny random-weight models of issue 14 and records transformers' and
sentence-transformers' outputs for them (refs-dev.json, same layout as the existing fixtures).

Usage: refgen.py TOKENIZERS_DIR OUT_DIR [MODEL ...]
  TOKENIZERS_DIR  an unpacked tests/data/tokenizers.tar.xz ("tokenizers/" inside it)
  OUT_DIR         receives models/NAME/ for every row of families.MODELS (or the named ones)
See README.md for the whole procedure (venv, packing the archive).
"""

import json
import math
import os
import shutil
import sys
import tempfile
import zlib

import numpy as np
import torch
import transformers
import sentence_transformers
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, pipeline

import families

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = json.load(open(os.path.join(HERE, "inputs.json"), encoding="utf-8"))
SEED = 14
GREEDY_NEW = 48
SAMPLING = [
    {"do_sample": True, "temperature": 0.8, "top_k": 20, "top_p": 0.9, "seed": 1234},
    {"do_sample": True, "temperature": 1.3, "top_k": 8, "top_p": 1.0, "seed": 7},
]
SAMPLING_NEW = 24
# the plain attention: transformers' sdpa path ignores Gemma 2's attn_logit_softcapping
ATTN = "eager"
# a prompt longer than the sliding windows (8) and Phi-3's original_max_position_embeddings (16)
LONG_PROMPT = INPUTS["texts"][18][:160]


def versions():
    return {
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "safetensors": __import__("safetensors").__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "generator": "tools/refgen/refgen.py",
        "seed": SEED,
        "attn_implementation": ATTN,
    }


def fl(x):
    """Tensor/array/float -> nested lists of floats at 7 significant digits."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        return [fl(v) for v in x] if x.ndim else fl(float(x))
    if isinstance(x, (list, tuple)):
        return [fl(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float("%.7g" % float(x))
    return x


def clean(obj):
    """Pipeline output -> JSON-able (numpy scalars to python, floats rounded)."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating, torch.Tensor, np.ndarray)):
        return fl(obj)
    return obj


# ---- the model directory --------------------------------------------------------------------


def grid(x, std, coarse=False):
    """Random values on a power-of-two grid (step std/2, or std for embeddings, clipped at 4
    std): still random, but the fp32 tensors compress several-fold, which keeps the archive at
    a few MB."""
    step = 2.0 ** round(math.log2(std if coarse else std / 2))
    lim = round(4 * std / step)
    return torch.clamp(torch.round(x / step), -lim, lim) * step


HEADS = ("classifier", "qa_outputs", "score", "pooler", "lm_head", "head", "cls", "lm_predictions")


def param_seed(model, name, row_name, p):
    """The backbone of every head of one family gets the same weights (seeded by model_type
    and the parameter's name without the base-model prefix), as fine-tunes of one base would;
    a vocabulary-sized embedding is seeded by its shape alone, so models that share a
    tokenizer and hidden size share it; heads are seeded by the fixture's own name."""
    prefix = model.base_model_prefix + "."
    inner = name[len(prefix):] if name.startswith(prefix) else name
    if p.dim() == 2 and p.shape[0] == model.config.vocab_size and "embed" in name:
        key = "embedding:%dx%d" % tuple(p.shape)
    elif name.startswith(prefix) or not any(h in name for h in HEADS):
        key = model.config.model_type + ":" + inner
    else:
        key = row_name + ":" + name
    return zlib.crc32(("%d:" % SEED + key).encode())


@torch.no_grad()
def randomize(model, row_name, embed_std=0.5, norm_offset=0.0):
    for name, p in model.named_parameters():
        gen = torch.Generator().manual_seed(param_seed(model, name, row_name, p))
        r = torch.randn(p.shape, generator=gen)
        if p.dim() == 1:
            noise = grid(r, 0.1)
            if name.endswith("bias"):
                p.copy_(noise)
            elif torch.all(p == 1):
                p.copy_(1 + noise)  # norm weights
            else:
                p.copy_(norm_offset + noise)  # zero-centred (Gemma's 1 + w) norms
        elif ("embed" in name and p.shape[0] >= 256) or p.shape[0] == model.config.vocab_size:
            p.copy_(grid(r, embed_std, coarse=True))
        else:
            head = any(h in name for h in HEADS) and not name.startswith(model.base_model_prefix + ".")
            std = (0.3 if head else 1.0) / math.sqrt(p.shape[-1])
            p.copy_(grid(r, std))


def copy_tokenizer(tok_src, out, name, extra):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_src, f), os.path.join(out, f))
    if extra.get("padding_side") or extra.get("pooling") == "lasttoken":
        path = os.path.join(out, "tokenizer_config.json")
        cfg = json.load(open(path, encoding="utf-8"))
        cfg.setdefault("pad_token", "</s>")
        cfg["padding_side"] = extra.get("padding_side", "right")
        json.dump(cfg, open(path, "w", encoding="utf-8"), indent=2, ensure_ascii=False)


def write_hub_config(out, cfg, arch, dtype="float32"):
    hub = dict(cfg)
    hub["architectures"] = [arch]
    hub["torch_dtype"] = dtype
    hub["transformers_version"] = transformers.__version__
    json.dump(hub, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)


def build(row, tok_root, out_root):
    name, tok_name, cfg, arch, kind, extra = row
    out = os.path.join(out_root, "models", name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    copy_tokenizer(os.path.join(tok_root, tok_name), out, name, extra)
    tok = AutoTokenizer.from_pretrained(out)
    assert cfg["vocab_size"] == len(tok), (name, cfg["vocab_size"], len(tok))
    write_hub_config(out, cfg, arch)
    config = AutoConfig.from_pretrained(out)
    cls = getattr(transformers, arch)
    torch.manual_seed(SEED)
    model = cls(config).eval()
    randomize(model, name, extra.get("embed_std", 0.5), extra.get("norm_offset", 0.0))
    dtype = extra.get("dtype", "float32")
    want = {k: v.clone() for k, v in model.state_dict().items()}
    # bfloat16 files (as Qwen3, Gemma 3 and Phi-3 ship): the grid values are exact in bf16
    model.to(getattr(torch, dtype)).save_pretrained(out, safe_serialization=True)
    write_hub_config(out, cfg, arch, dtype)  # save_pretrained re-wrote it in transformers' own form
    if kind == "lm":
        gc = {"bos_token_id": cfg.get("bos_token_id"), "eos_token_id": cfg.get("eos_token_id")}
        if cfg.get("pad_token_id") is not None:
            gc["pad_token_id"] = cfg["pad_token_id"]
        if name.startswith("qwen3"):
            gc["eos_token_id"] = [151645, 151643]
            gc["pad_token_id"] = 151643
        GenerationConfig(**gc).save_pretrained(out)
    else:
        gpath = os.path.join(out, "generation_config.json")
        if os.path.exists(gpath):
            os.remove(gpath)
    if kind == "embed":
        write_st_modules(out, cfg, extra)
    # the reference is what a fresh load of the directory computes
    again = cls.from_pretrained(out, attn_implementation=ATTN, dtype=torch.float32).eval()
    for k, b in again.state_dict().items():
        assert b.dtype == torch.float32 and torch.equal(want[k], b), (name, k)
    return out, again, tok


def write_st_modules(out, cfg, extra):
    from sentence_transformers import SentenceTransformer, models

    tr = models.Transformer(out)
    pool = models.Pooling(cfg["hidden_size"], pooling_mode=extra["pooling"])
    mods = [tr, pool] + ([models.Normalize()] if extra.get("normalize") else [])
    st = SentenceTransformer(modules=mods, prompts=extra.get("prompts"), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        st.save(tmp)
        for f in os.listdir(tmp):
            src = os.path.join(tmp, f)
            if os.path.isdir(src):
                shutil.rmtree(os.path.join(out, f), ignore_errors=True)
                shutil.copytree(src, os.path.join(out, f))
            elif f in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
                shutil.copy(src, os.path.join(out, f))


# ---- encoders -------------------------------------------------------------------------------


@torch.no_grad()
def forward(model, enc):
    return model(**enc, output_hidden_states=True)


def encode(tok, a, b=None):
    return tok(a, b, return_tensors="pt") if b is not None else tok(a, return_tensors="pt")


@torch.no_grad()
def enc_logits_alone(model, tok, kind):
    rows = []
    if kind == "qa":
        for x in INPUTS["qa"]:
            enc = encode(tok, x["question"], x["context"])
            o = forward(model, enc)
            rows.append({"question": x["question"], "context": x["context"],
                         "input_ids": enc["input_ids"][0].tolist(),
                         "start_logits": fl(o.start_logits[0]), "end_logits": fl(o.end_logits[0])})
        return rows
    pairs = {"seqcls": [(t, None) for t in INPUTS["texts"]],
             "nli": [tuple(p) for p in INPUTS["nli_logits"]],
             "tokcls": [(t, None) for t in INPUTS["token_texts"]]}.get(kind, [])
    for a, b in pairs:
        enc = encode(tok, a, b)
        o = forward(model, enc)
        rows.append({"text": a, "pair": b, "input_ids": enc["input_ids"][0].tolist(), "logits": fl(o.logits[0])})
    return rows


@torch.no_grad()
def enc_batch(model, tok, kind):
    """One right-padded batch: logits of every row and the last hidden state of the real
    tokens (the pad positions' values are not part of any output)."""
    if kind == "qa":
        qs = [x["question"] for x in INPUTS["qa"]]
        cs = [x["context"] for x in INPUTS["qa"]]
        enc = tok(qs, cs, padding=True, return_tensors="pt")
    else:
        texts = INPUTS["token_texts"] if kind == "tokcls" else INPUTS["texts"]
        enc = tok(texts, padding=True, return_tensors="pt")
    o = forward(model, enc)
    mask = enc["attention_mask"]
    rows = []
    for i in range(mask.shape[0]):
        n = int(mask[i].sum())
        r = {"input_ids": enc["input_ids"][i].tolist(), "attention_mask": mask[i].tolist()}
        if kind == "qa":
            r["question"], r["context"] = qs[i], cs[i]
            r["start_logits"] = fl(o.start_logits[i][:n])
            r["end_logits"] = fl(o.end_logits[i][:n])
        else:
            r["text"] = texts[i]
            if kind in ("seqcls", "nli"):
                r["logits"] = fl(o.logits[i])
            elif kind == "tokcls":
                r["logits"] = fl(o.logits[i][:n])
        if i < 4 or i in (18, 19):  # the hidden states of a few short and two long rows
            r["last_hidden_state"] = fl(o.hidden_states[-1][i][:n])
        rows.append(r)
    return {"padding_side": tok.padding_side, "pad_token_id": tok.pad_token_id, "rows": rows}


@torch.no_grad()
def token_features(model, tok):
    rows = []
    base = getattr(model, "base_model", model)
    for t in INPUTS["token_feature_texts"] + [INPUTS["texts"][18]]:
        enc = encode(tok, t)
        o = base(**enc)
        rows.append({"text": t, "input_ids": enc["input_ids"][0].tolist(), "last_hidden_state": fl(o.last_hidden_state[0])})
    return rows


def run_pipeline(task, model, tok, entries, fix_input=lambda x: x):
    try:
        p = pipeline(task, model=model, tokenizer=tok, device="cpu")
    except Exception as e:  # noqa: BLE001 - recorded, as the existing fixtures do
        return [{"error": "pipeline unavailable: %r" % e}]
    out = []
    for x in entries:
        inp, params = fix_input(x["input"]), x["parameters"]
        try:
            if task == "zero-shot-classification":
                res = p(inp["sequence"], inp["candidate_labels"], **params)
            else:
                res = p(inp, **params)
            out.append({"input": inp, "parameters": params, "output": clean(res)})
        except Exception as e:  # noqa: BLE001
            out.append({"input": inp, "parameters": params, "error": repr(e)})
    return out


def encoder_refs(name, model, tok, kind, extra, out):
    task = {"seqcls": "text-classification", "nli": "zero-shot-classification", "tokcls": "token-classification",
            "qa": "question-answering", "mlm": "fill-mask", "embed": "feature-extraction"}[kind]
    refs = {"task": task, "versions": versions()}
    if kind != "mlm" and kind != "embed":
        refs["logits"] = enc_logits_alone(model, tok, kind)
    if kind == "seqcls":
        refs["pair_logits"] = enc_logits_alone_pairs(model, tok)
        refs["pipeline"] = run_pipeline("text-classification", model, tok, INPUTS["textcls_pipeline"])
    elif kind == "nli":
        refs["pipeline"] = run_pipeline("zero-shot-classification", model, tok, INPUTS["zero_shot"])
    elif kind == "tokcls":
        entries = [{"input": t, "parameters": p} for p in INPUTS["token_aggregations"] for t in INPUTS["token_texts"]]
        refs["pipeline"] = run_pipeline("token-classification", model, tok, entries)
    elif kind == "qa":
        entries = [{"input": {"question": x["question"], "context": x["context"]}, "parameters": {}} for x in INPUTS["qa"]]
        refs["pipeline"] = run_pipeline("question-answering", model, tok, entries)[:1]
    elif kind == "mlm":
        refs["pipeline"] = run_pipeline("fill-mask", model, tok, INPUTS["fill_mask"],
                                        lambda s: s.replace("[MASK]", tok.mask_token))
    if kind != "embed":
        refs["batch"] = enc_batch(model, tok, kind)
    refs["token_features"] = token_features(model, tok)
    if kind == "embed":
        refs["feature_extraction_pipeline"] = run_pipeline(
            "feature-extraction", model, tok, [{"input": t, "parameters": {}} for t in INPUTS["token_feature_texts"]])
        refs.update(st_refs(out, extra))
    return refs


@torch.no_grad()
def enc_logits_alone_pairs(model, tok):
    rows = []
    for a, b in INPUTS["pairs"]:
        enc = encode(tok, a, b)
        rows.append({"text": a, "pair": b, "input_ids": enc["input_ids"][0].tolist(), "logits": fl(forward(model, enc).logits[0])})
    return rows


def st_refs(out, extra):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(out, device="cpu", model_kwargs={"attn_implementation": ATTN, "dtype": torch.float32})
    texts = INPUTS["embed_texts"]
    emb = st.encode(texts, batch_size=16, convert_to_numpy=True)
    one = [st.encode([t], convert_to_numpy=True)[0] for t in texts[:5]]
    refs = {
        "sentence_embeddings": [{"text": t, "embedding": fl(e)} for t, e in zip(texts, emb)],
        "sentence_embeddings_alone": [{"text": t, "embedding": fl(e)} for t, e in zip(texts[:5], one)],
        "sentence_transformers": {"batch_size": 16, "pooling": extra["pooling"], "normalize": bool(extra.get("normalize")),
                                  "padding_side": st.tokenizer.padding_side},
    }
    if extra.get("prompts"):
        rows = []
        for pname in extra["prompts"]:
            e = st.encode(texts[:6], prompt_name=pname, convert_to_numpy=True)
            enc = st.tokenizer(extra["prompts"][pname] + texts[0])
            rows += [{"prompt_name": pname, "text": t, "embedding": fl(v)} for t, v in zip(texts[:6], e)]
            rows[-6]["input_ids"] = enc["input_ids"]
        refs["prompted_embeddings"] = rows
    return refs


# ---- decoders -------------------------------------------------------------------------------


def top20(logits):
    v, i = torch.topk(logits.float(), 20)
    return {"ids": i.tolist(), "values": fl(v)}


@torch.no_grad()
def greedy(model, ids, n, **kw):
    out = model.generate(ids, max_new_tokens=n, do_sample=False, output_scores=True,
                         return_dict_in_generate=True, **kw)
    new = out.sequences[:, ids.shape[1]:]
    margins = []
    for s in out.scores:
        t = torch.topk(s.float(), 2, dim=-1).values
        margins.append((t[:, 0] - t[:, 1]))
    margins = torch.stack(margins, 1) if margins else torch.zeros(new.shape[0], 0)
    return new, margins


@torch.no_grad()
def greedy_nocache(model, ids, n):
    """Greedy by a full forward over the whole sequence at every step (no KV cache): the
    definition generate() must agree with."""
    seq, margins = ids, []
    for _ in range(n):
        logits = model(seq, use_cache=False).logits[:, -1].float()
        t = torch.topk(logits, 2, dim=-1)
        margins.append(t.values[:, 0] - t.values[:, 1])
        seq = torch.cat([seq, t.indices[:, :1]], 1)
    return seq[:, ids.shape[1]:], torch.stack(margins, 1)


def is_phi3(model):
    return model.config.model_type == "phi3"


@torch.no_grad()
def sampled(model, ids, params):
    p = dict(params)
    seed = p.pop("seed")
    torch.manual_seed(seed)
    out = model.generate(ids, max_new_tokens=SAMPLING_NEW, output_scores=True,
                         return_dict_in_generate=True, **p)
    steps = []
    for s in out.scores:
        probs = torch.softmax(s[0].float(), -1)
        keep = torch.nonzero(torch.isfinite(s[0])).flatten()
        order = keep[torch.argsort(probs[keep], descending=True)]
        steps.append({"ids": order.tolist(), "probs": fl(probs[order])})
    return out.sequences[0, ids.shape[1]:].tolist(), steps


def decoder_refs(name, model, tok, extra):
    refs = {"task": "text-generation", "versions": versions(), "generations": []}
    prompts = INPUTS["prompts"] + [LONG_PROMPT]
    min_margin = float("inf")
    with torch.no_grad():
        for pr in prompts:
            ids = tok(pr, return_tensors="pt")["input_ids"]
            o = model(ids, output_hidden_states=True)
            g, m = greedy(model, ids, GREEDY_NEW)
            full, fm = greedy_nocache(model, ids, GREEDY_NEW)
            row = {
                "prompt": pr, "input_ids": ids[0].tolist(),
                "last_logits_top20": top20(o.logits[0, -1]),
                "logits_first_position_first8": fl(o.logits[0, 0, :8]),
                "last_hidden_state": fl(o.hidden_states[-1][0]),
            }
            if is_phi3(model):
                # generate() of this transformers drops the KV cache at every step once the
                # sequence passes original_max_position_embeddings (Phi3's
                # prepare_inputs_for_generation resets it while the new cache stays shorter
                # than the switch point), so its ids past the switch are context-free; the
                # reference is the recompute-everything definition, generate()'s kept aside.
                row["hf_generate_greedy_ids"] = g[0].tolist()
                g, m = full, fm
            else:
                assert torch.equal(g, full), (pr, g, full)
            min_margin = min(min_margin, float(m.min()))
            row.update({"greedy_ids": g[0].tolist(), "greedy_text": tok.decode(g[0]),
                        "greedy_min_margin": fl(float(m.min()))})
            refs["generations"].append(row)
        refs["batch"] = decoder_batch(model, tok, prompts)
        if is_phi3(model):
            refs["generations_note"] = (
                "greedy_ids: argmax of a full forward over the whole sequence at every step, so once the "
                "sequence is longer than original_max_position_embeddings every position uses the long "
                "factors (what Phi3's generate() means to do by recomputing the cache at the switch); "
                "hf_generate_greedy_ids: what generate() of this transformers version returns, which loses "
                "the context past the switch. batch: short prompts only and no generation past the switch, "
                "because transformers picks the factor set by the longest row of a batch.")
        refs["sampling"] = []
        for pr in prompts[:2]:
            ids = tok(pr, return_tensors="pt")["input_ids"]
            for params in SAMPLING:
                seq, steps = sampled(model, ids, params)
                refs["sampling"].append({"prompt": pr, "input_ids": ids[0].tolist(), "parameters": params,
                                         "max_new_tokens": SAMPLING_NEW, "sampled_ids": seq, "steps": steps})
        if extra.get("chat"):
            refs["chat"] = chat_refs(model, tok)
    refs["greedy_min_margin"] = fl(min_margin)
    p = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    refs["pipeline"] = []
    for pr in INPUTS["prompts"][:3]:
        params = {"max_new_tokens": 16, "do_sample": False}
        entry = {"input": pr, "parameters": params, "output": clean(p(pr, **params))}
        if is_phi3(model):
            # the pipeline runs generate(), which loses the context past the LongRoPE switch
            # (see above); greedy_output is the pipeline's own postprocess of the reference
            # greedy ids (full forward every step), what the pipeline returns without that loss
            ids = tok(pr, return_tensors="pt")["input_ids"]
            g, _ = greedy_nocache(model, ids, params["max_new_tokens"])
            seq = torch.cat([ids, g], 1).unsqueeze(0)
            entry["greedy_output"] = clean(p.postprocess(
                {"generated_sequence": seq, "input_ids": ids, "prompt_text": pr}))
            entry["crosses_longrope_switch"] = (
                ids.shape[1] + params["max_new_tokens"] > model.config.original_max_position_embeddings)
        refs["pipeline"].append(entry)
    if is_phi3(model):
        refs["pipeline_note"] = (
            "output: what pipeline('text-generation') of this transformers version returns (its generate() "
            "loses the context past original_max_position_embeddings, see generations_note); greedy_output: "
            "the pipeline's postprocess of greedy_ids, the definition inferd serves.")
    return refs


@torch.no_grad()
def decoder_batch(model, tok, prompts):
    """Left-padded batch (pad = the config's pad id, or eos), position ids from the mask the
    way generate() makes them: last-position logits per row and batched greedy ids."""
    pad = model.config.pad_token_id
    if pad is None:
        pad = model.generation_config.pad_token_id
    if isinstance(pad, list) or pad is None:
        pad = tok.eos_token_id
    seqs = [tok(p)["input_ids"] for p in prompts]
    n_new = GREEDY_NEW
    if is_phi3(model):
        short = model.config.original_max_position_embeddings
        keep = [i for i, s in enumerate(seqs) if len(s) < short]
        prompts, seqs = [prompts[i] for i in keep], [seqs[i] for i in keep]
        n_new = short - max(map(len, seqs))
    L = max(map(len, seqs))
    ids = torch.tensor([[pad] * (L - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (L - len(s)) + [1] * len(s) for s in seqs])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    o = model(input_ids=ids, attention_mask=mask, position_ids=pos)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=n_new, do_sample=False, pad_token_id=pad)
    rows = []
    for i, s in enumerate(seqs):
        rows.append({"prompt": prompts[i], "input_ids": s, "last_logits_top20": top20(o.logits[i, -1]),
                     "greedy_ids": out[i, L:].tolist()})
    return {"padding_side": "left", "pad_token_id": pad, "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(), "rows": rows}


@torch.no_grad()
def chat_refs(model, tok):
    conv = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "What is 2+2?"},
         {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4."},
         {"role": "user", "content": "And 3+3?"}],
    ]
    rows = []
    for msgs in conv:
        for thinking in (True, False):
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, enable_thinking=thinking)
            ids = tok(text, return_tensors="pt")["input_ids"]
            g, m = greedy(model, ids, 40)
            rows.append({"messages": msgs, "add_generation_prompt": True, "enable_thinking": thinking, "text": text,
                         "input_ids": ids[0].tolist(), "greedy_ids": g[0].tolist(), "greedy_min_margin": fl(float(m.min()))})
    return rows


# ---- the structural features are exercised ----------------------------------------------------


@torch.no_grad()
def feature_checks(row, out, model, tok):
    """Loads the same weights under each config change of families.CHECKS and measures how
    much the recorded outputs move; every change must move them."""
    name, _, cfg, arch, kind, _ = row
    overrides = families.CHECKS.get(name.split("-")[0], [])
    cls = getattr(transformers, arch)
    long_text = INPUTS["texts"][18]
    results = []
    for ov in overrides:
        with tempfile.TemporaryDirectory() as tmp:
            for f in os.listdir(out):
                if f != "config.json":
                    os.symlink(os.path.join(out, f), os.path.join(tmp, f))
            write_hub_config(tmp, dict(cfg, **ov), arch, row[5].get("dtype", "float32"))
            alt = cls.from_pretrained(tmp, attn_implementation=ATTN, dtype=torch.float32).eval()
            if kind == "lm":
                ids = tok(LONG_PROMPT, return_tensors="pt")["input_ids"]
                diff = (model(ids).logits - alt(ids).logits).abs().max().item()
                short = tok(INPUTS["prompts"][0], return_tensors="pt")["input_ids"]
                a, _ = greedy_nocache(model, short, GREEDY_NEW)
                b, _ = greedy_nocache(alt, short, GREEDY_NEW)
                r = {"override": ov, "long_prompt_logits_max_abs_diff": fl(diff), "short_prompt_greedy_differs": not torch.equal(a, b)}
                # a final soft-cap is monotonic: it moves logits and sampling, never the argmax
                moved = diff > 1e-3 and (r["short_prompt_greedy_differs"] or "final_logit_softcapping" in ov)
            else:
                enc = tok(long_text, return_tensors="pt")
                h = lambda m: m(**enc, output_hidden_states=True).hidden_states[-1]
                diff = (h(model) - h(alt)).abs().max().item()
                r = {"override": ov, "long_text_hidden_max_abs_diff": fl(diff)}
                moved = diff > 1e-3
        assert moved, (name, r)
        results.append(r)
    return results


# ---- main -------------------------------------------------------------------------------------


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    tok_root, out_root, only = argv[1], argv[2], set(argv[3:])
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for row in families.MODELS:
        name, kind, extra = row[0], row[4], row[5]
        if only and name not in only:
            continue
        out, model, tok = build(row, tok_root, out_root)
        refs = decoder_refs(name, model, tok, extra) if kind == "lm" else encoder_refs(name, model, tok, kind, extra, out)
        refs["feature_checks"] = feature_checks(row, out, model, tok)
        with open(os.path.join(out, "refs-dev.json"), "w", encoding="utf-8") as f:
            json.dump(refs, f, ensure_ascii=False, separators=(",", ":"))
        note = " min greedy margin %s" % refs.get("greedy_min_margin") if kind == "lm" else ""
        print("%-24s %s%s" % (name, refs["task"], note), flush=True)


if __name__ == "__main__":
    main(sys.argv)
