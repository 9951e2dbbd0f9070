"""q4_checkpoints.py FIXTURE_DIR OUT_DIR AUTOAWQ_SRC

Pre-quantized 4-bit checkpoints of the llama-lm fixture (random tiny LLaMA, tests/data/
models-other.tar.xz) in the layouts transformers reads (issue 18), and their references:

  awq-llama-lm    quant_method "awq", version "gemm", 4 bits, group 32, zero points
                  (asymmetric): qweight int32 (in, out/8) in AWQ's interleaved nibble order,
                  qzeros int32 (in/32, out/8), scales f16 (in/32, out)
  gptq-llama-lm   quant_method "gptq", checkpoint_format "gptq" (v1), 4 bits, group 32, sym,
                  desc_act false: qweight int32 (in/8, out), qzeros int32 (in/32, out/8) holding
                  zero - 1 (7), scales f16 (in/32, out), g_idx int32 (in)
  gptq-llama-lm-actorder   the same with layer 0 down_proj's g_idx reversed (desc_act true):
                           refused
  awq-llama-lm-noqzeros    the AWQ one without layer 0's q_proj.qzeros: refused

Every linear of the decoder layers is quantized by round to nearest (f16 scales); embeddings,
norms and lm_head stay f32 as in the fixture. The oracle is transformers' LlamaForCausalLM in
f32 with the dequantized weights: AWQ's come from AutoAWQ's own dequantize_gemm
(awq/utils/packing_utils.py of the autoawq sdist, loaded by path: it needs only torch; its
scales passed as f32 so that s * (q - z) is exact), GPTQ's from unpacking as GPTQModel's
dequantize_weight does (codes along in, zero points + 1 for the v1 format). refs-dev.json holds,
per prompt of the fixture's refs-dev.json, the first 8 logits at position 0, the top-20 at the
last position and 24 greedy tokens, like the fixture's.
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from safetensors.torch import load_file

G = 32
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # nibble i of a word holds column 8c + AWQ_ORDER[i]


def quantize(w, sym):
    """w (out, in) f32 -> q (out, in) 0..15, z (out, in/G) ints, s (out, in/G) f16."""
    out, inn = w.shape
    g = w.reshape(out, inn // G, G)
    if sym:
        s = (np.abs(g).max(axis=2) / 7.5).astype(np.float16)
        z = np.full(s.shape, 8, dtype=np.int64)
    else:
        lo = np.minimum(g.min(axis=2), 0)
        hi = np.maximum(g.max(axis=2), 0)
        s = ((hi - lo) / 15).astype(np.float16)
        z = np.clip(np.rint(-lo / s.astype(np.float32)), 0, 15).astype(np.int64)
    sf = s.astype(np.float32)[:, :, None]
    q = np.clip(np.rint(g / sf) + z[:, :, None], 0, 15).astype(np.int64)
    return q.reshape(out, inn), z, s


def pack_cols(v, order):
    """v (rows, cols) 0..15 -> int32 (rows, cols/8), nibble i = column 8c + order[i]."""
    rows, cols = v.shape
    words = np.zeros((rows, cols // 8), dtype=np.uint32)
    for i in range(8):
        words |= (v[:, order[i]::8].astype(np.uint32) & 15) << np.uint32(4 * i)
    return words.view(np.int32)


def pack_rows(v):
    """v (rows, cols) -> int32 (rows/8, cols), nibble j of word r = row 8r + j."""
    rows, cols = v.shape
    words = np.zeros((rows // 8, cols), dtype=np.uint32)
    for j in range(8):
        words |= (v[j::8, :].astype(np.uint32) & 15) << np.uint32(4 * j)
    return words.view(np.int32)


def gptq_dequant(qweight, qzeros, scales, g_idx):
    """GPTQ v1 tensors -> w^T (in, out) f32, as GPTQModel unpacks them."""
    qw = qweight.view(np.uint32)
    inn = qw.shape[0] * 8
    q = np.stack([(qw >> np.uint32(4 * j)) & 15 for j in range(8)], axis=1).reshape(inn, -1)
    qz = qzeros.view(np.uint32)
    z = np.stack([(qz >> np.uint32(4 * j)) & 15 for j in range(8)], axis=2).reshape(qz.shape[0], -1)
    z = z.astype(np.float32) + 1
    s = scales.astype(np.float32)
    return s[g_idx] * (q.astype(np.float32) - z[g_idx])


def references(model, prompts):
    gens = []
    for p in prompts:
        ids = torch.tensor([p["input_ids"]])
        with torch.no_grad():
            logits = model(ids).logits[0]
            out = model.generate(ids, max_new_tokens=24, do_sample=False, num_beams=1,
                                 attention_mask=torch.ones_like(ids), pad_token_id=0)
        top = torch.topk(logits[-1], 20)
        gens.append({
            "prompt": p["prompt"], "input_ids": p["input_ids"],
            "logits_first_position_first8": [round(float(v), 6) for v in logits[0, :8]],
            "last_logits_top20": {"ids": top.indices.tolist(),
                                  "values": [round(float(v), 6) for v in top.values]},
            "greedy_ids": out[0, ids.shape[1]:].tolist(),
        })
    return gens


def write(out_dir, src, tensors, qconfig, gens):
    os.makedirs(out_dir, exist_ok=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]:
        shutil.copy(os.path.join(src, f), out_dir)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization_config"] = qconfig
    json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"), indent=2)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    if gens is not None:
        json.dump({"task": "text-generation", "generations": gens,
                   "versions": {"transformers": transformers.__version__,
                                "torch": torch.__version__, "numpy": np.__version__,
                                "autoawq_dequantize_gemm": "autoawq 0.2.9 sdist"}},
                  open(os.path.join(out_dir, "refs-dev.json"), "w"), indent=1)


def main():
    src, out, awq_src = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = importlib.util.spec_from_file_location(
        "awq_packing", os.path.join(awq_src, "awq/utils/packing_utils.py"))
    awq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(awq)
    torch.manual_seed(0)
    sd = {k: v.numpy() for k, v in load_file(os.path.join(src, "model.safetensors")).items()}
    prompts = json.load(open(os.path.join(src, "refs-dev.json")))["generations"]
    cfg = transformers.AutoConfig.from_pretrained(src)
    n_layers = cfg.num_hidden_layers
    for fmt in ["awq", "gptq"]:
        tensors, deq = {}, {}
        for name, v in sd.items():
            base = name[:-len(".weight")]
            if not any(base.endswith(l) for l in LINEARS):
                tensors[name] = v
                continue
            q, z, s = quantize(v, sym=(fmt == "gptq"))
            if fmt == "awq":
                qweight = pack_cols(q.T.copy(), AWQ_ORDER)
                qzeros = pack_cols(z.T.copy(), AWQ_ORDER)
                tensors.update({base + ".qweight": qweight, base + ".qzeros": qzeros,
                                base + ".scales": s.T.copy()})
                w = awq.dequantize_gemm(torch.from_numpy(qweight), torch.from_numpy(qzeros),
                                        torch.from_numpy(s.T.astype(np.float32)), 4, G)
                deq[name] = w.T.contiguous().float()
            else:
                g_idx = (np.arange(v.shape[1]) // G).astype(np.int32)
                qweight = pack_rows(q.T.copy())
                qzeros = pack_cols((z - 1).T.copy(), list(range(8)))
                tensors.update({base + ".qweight": qweight, base + ".qzeros": qzeros,
                                base + ".scales": s.T.copy(), base + ".g_idx": g_idx})
                deq[name] = torch.from_numpy(
                    gptq_dequant(qweight, qzeros, s.T.copy(), g_idx).T.copy())
        model = transformers.LlamaForCausalLM(cfg).float().eval()
        state = {k: torch.from_numpy(v) for k, v in sd.items()}
        state.update(deq)
        model.load_state_dict(state)
        gens = references(model, prompts)
        if fmt == "awq":
            qc = {"quant_method": "awq", "bits": 4, "group_size": G, "zero_point": True,
                  "version": "gemm", "modules_to_not_convert": None}
            write(os.path.join(out, "models", "awq-llama-lm"), src, tensors, qc, gens)
            bad = dict(tensors)
            del bad["model.layers.0.self_attn.q_proj.qzeros"]
            write(os.path.join(out, "models", "awq-llama-lm-noqzeros"), src, bad, qc, None)
        else:
            qc = {"quant_method": "gptq", "bits": 4, "group_size": G, "sym": True,
                  "desc_act": False, "checkpoint_format": "gptq"}
            write(os.path.join(out, "models", "gptq-llama-lm"), src, tensors, qc, gens)
            bad = dict(tensors)
            k = "model.layers.0.mlp.down_proj.g_idx"  # two groups: reversed, not k // 32
            bad[k] = bad[k][::-1].copy()
            write(os.path.join(out, "models", "gptq-llama-lm-actorder"), src, bad,
                  dict(qc, desc_act=True), None)
        assert n_layers > 0


if __name__ == "__main__":
    main()
