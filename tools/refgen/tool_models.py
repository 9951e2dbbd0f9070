"""tool_models.py TOKENIZERS_DIR QWEN3_LM_DIR OUT_DIR: two tiny decoders whose greedy answer is a
tool call, for the daemon's tool-calling tests (tests/integration/test_serve_tools.c).

A random tiny model never writes a tool call, so these weights are set, not drawn: one layer
whose attention and MLP write nothing (o_proj and down_proj zero), so the next token depends
only on the last one (embed_tokens -> final RMSNorm -> lm_head). The chain is the prompt's last
token ("\\n" after Qwen3's "<|im_start|>assistant", "\\n\\n" after Llama 3.1's assistant
header) then the tokens of one call; token k of the chain gets the basis vector e_k as its
embedding and the lm_head row of the token after it gets e_k, so greedy decoding spells the
call and ends with the end-of-turn token. The chain's tokens are each used once (a repeat would
need two successors). transformers' greedy generate from the prompt apply_chat_template renders
(with tools; and a second turn with the call and its result) is the reference: refs.json holds
each conversation, the prompt's token count, the generated ids and text, and the text of the
first 3 ids (the answer cut by max_tokens 3).

  tools-qwen3     Qwen3ForCausalLM, Qwen3's tokenizer and real chat template (hermes):
                  <tool_call>{"name":"get_weather","arguments":{"city": "Paris"}}</tool_call>
  tools-llama3.1  LlamaForCausalLM, Llama 3's tokenizer, tool_templates/llama3.1.jinja
                  (llama3_json): {"name":"get_weather","parameters":{"city": "Paris"}}
"""

import copy
import json
import pathlib
import shutil
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tool_templates import TOOLS, shaped  # noqa: E402

HIDDEN = 16  # one basis vector per chain token (at most 16)


def qwen3_config(base):
    cfg = json.loads((pathlib.Path(base) / "config.json").read_text())
    cfg.update(hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=1, max_window_layers=1,
               num_attention_heads=2, num_key_value_heads=1, head_dim=8,
               tie_word_embeddings=False, torch_dtype="float32")
    return cfg


def llama_config():
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 8, "hidden_act": "silu",
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
        "tie_word_embeddings": False, "vocab_size": 128256, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "attention_bias": False, "mlp_bias": False,
    }


MODELS = {
    "tools-qwen3": {
        "config": "qwen3", "tokenizer": None, "template": None, "eos": "<|im_end|>",
        "generation": {"bos_token_id": 151643, "eos_token_id": [151645, 151643]},
        "call": '<tool_call>{"name":"get_weather","arguments":{"city": "Paris"}}</tool_call>',
    },
    "tools-llama3.1": {
        "config": "llama", "tokenizer": "llama3", "template": "llama3.1.jinja",
        "eos": "<|eot_id|>",
        "generation": {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]},
        "call": '{"name":"get_weather","parameters":{"city": "Paris"}}',
    },
}

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def conversations(call_args):
    turn2 = ASK + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": call_args}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]
    return [ASK, turn2]


def set_weights(model, chain, eos_id):
    """chain: the prompt's last token, then the call's tokens; eos follows the last."""
    assert len(chain) <= HIDDEN and len(set(chain)) == len(chain), chain
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0 if name.endswith("norm.weight") else 0.0)
        emb = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        for k, tok in enumerate(chain):
            emb[tok, k] = 1.0
            succ = chain[k + 1] if k + 1 < len(chain) else eos_id
            head[succ, k] = 1.0


def build(name, spec, tok_dir, qwen_dir, out_dir):
    dst = pathlib.Path(out_dir) / "models" / name
    dst.mkdir(parents=True, exist_ok=True)
    src = pathlib.Path(qwen_dir) if spec["tokenizer"] is None else pathlib.Path(tok_dir) / spec["tokenizer"]
    shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
    tcfg = json.loads((src / "tokenizer_config.json").read_text())
    if spec["template"]:
        tcfg["chat_template"] = (HERE / "tool_templates" / spec["template"]).read_text()
    (dst / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False))
    cfg = qwen3_config(qwen_dir) if spec["config"] == "qwen3" else llama_config()
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    (dst / "generation_config.json").write_text(json.dumps(spec["generation"], indent=2))

    tok = AutoTokenizer.from_pretrained(str(dst))
    config = AutoConfig.from_pretrained(str(dst))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    call_ids = tok.encode(spec["call"], add_special_tokens=False)
    prompt = tok.apply_chat_template(shaped(ASK), tools=TOOLS, add_generation_prompt=True,
                                     tokenize=False)
    last = tok.encode(prompt, add_special_tokens=False)[-1]
    eos_id = tok.convert_tokens_to_ids(spec["eos"])
    set_weights(model, [last] + call_ids, eos_id)
    model.save_pretrained(str(dst), safe_serialization=True)
    model.eval()

    args = json.dumps({"city": "Paris"})  # the call's arguments as json.dumps prints them
    refs = []
    for messages in conversations(args):
        text = tok.apply_chat_template(shaped(messages), tools=TOOLS, add_generation_prompt=True,
                                       tokenize=False)
        ids = tok.encode(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=32, eos_token_id=spec["generation"]["eos_token_id"],
                             pad_token_id=eos_id)
        new = out[0, ids.shape[1]:].tolist()
        assert new == call_ids + [eos_id], (name, new)
        refs.append({"messages": messages, "tools": TOOLS, "prompt_tokens": ids.shape[1],
                     "generated_ids": new,
                     "text": tok.decode(new, skip_special_tokens=True),
                     # the answer cut by max_tokens 3: a call's beginning, no call
                     "text_3": tok.decode(new[:3], skip_special_tokens=True),
                     "call": {"name": "get_weather", "arguments": args}})
    (dst / "refs.json").write_text(json.dumps(refs, indent=1, ensure_ascii=False))
    print(name, "chain", len(call_ids) + 1, "tokens;", [r["prompt_tokens"] for r in refs])


def main(tok_dir, qwen_dir, out_dir):
    for name, spec in MODELS.items():
        build(name, spec, tok_dir, qwen_dir, out_dir)
    (pathlib.Path(out_dir) / "models" / "VERSIONS-tools").write_text(
        f"transformers {transformers.__version__}\ntorch {torch.__version__}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
