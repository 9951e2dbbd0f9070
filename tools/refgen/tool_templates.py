"""tool_templates.py TOKENIZERS_DIR OUT_DIR: transformers' renders of chat templates with tools.

For each family of tool-calling chat templates (Qwen3's real template from tokenizers/qwen3;
Qwen2.5, Llama 3.1 and Mistral v0.3 from tool_templates/*.jinja, reconstructed: see README.md)
writes OUT_DIR/tool-templates/FAMILY/tokenizer_config.json (the base tokenizer's config with
that chat_template) and cases.json: each case is a conversation as an OpenAI request carries it
(assistant tool_calls with `arguments` as a JSON string, tool messages with tool_call_id), its
`tools`, add_generation_prompt, and the `text` that tokenizer.apply_chat_template(messages,
tools=tools, add_generation_prompt=..., tokenize=False) renders after the request is shaped as
vLLM shapes it (each call's arguments decoded with json.loads; a message's missing or null
content is ""). tests/unit/test_tool_calls.c renders the same through inferd and compares bytes.
"""

import copy
import json
import pathlib
import sys

import transformers
from transformers import AutoTokenizer

HERE = pathlib.Path(__file__).resolve().parent

# family -> (base tokenizer in tokenizers.tar.xz, template file or None for the base's own)
FAMILIES = {
    "qwen3": ("qwen3", None),
    "qwen2.5": ("qwen3", "qwen2.5.jinja"),
    "llama3.1": ("llama3", "llama3.1.jinja"),
    "mistral-v0.3": ("llama2", "mistral-v0.3.jinja"),
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Température et ciel d'une ville",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The local time",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


def call(cid, name, args):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def cases(family):
    # Mistral's template refuses ids that are not 9 characters; Llama 3.1 takes one call a turn
    a, b = ("Ab3dE6gH9", "Zy8xW7vU6") if family == "mistral-v0.3" else ("call_1", "call_2")
    ask = {"role": "user", "content": "What is the weather in Paris?"}
    one = [
        ask,
        {"role": "assistant", "content": None,
         "tool_calls": [call(a, "get_weather", '{"city": "Paris", "unit": "c"}')]},
        {"role": "tool", "tool_call_id": a, "content": '{"temperature": 21, "sky": "clear"}'},
    ]
    out = [
        {"messages": [ask], "tools": TOOLS, "add_generation_prompt": True},
        {"messages": [{"role": "system", "content": "You are terse."}, ask], "tools": TOOLS,
         "add_generation_prompt": True},
        {"messages": one, "tools": TOOLS, "add_generation_prompt": True},
        {"messages": one + [{"role": "assistant", "content": "It is 21°C and clear."},
                            {"role": "user", "content": "And the time?"}],
         "tools": TOOLS, "add_generation_prompt": True},
        {"messages": [ask, {"role": "assistant", "content": "Sunny."},
                      {"role": "user", "content": "Thanks"}], "tools": None,
         "add_generation_prompt": False},
    ]
    if family != "llama3.1":
        two = [
            ask,
            {"role": "assistant", "content": None,
             "tool_calls": [call(a, "get_weather", '{"city": "Paris"}'),
                            call(b, "get_time", "{}")]},
            {"role": "tool", "tool_call_id": a, "content": "21"},
            {"role": "tool", "tool_call_id": b, "content": "10:30"},
        ]
        out.append({"messages": two, "tools": TOOLS, "add_generation_prompt": True})
    return out


def shaped(messages):
    """The messages as the server hands them to the template (vLLM's shaping)."""
    out = []
    for m in copy.deepcopy(messages):
        if m.get("content") is None:
            m["content"] = ""
        for c in m.get("tool_calls") or []:
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])
        out.append(m)
    return out


def main(tok_dir, out_dir):
    for family, (base, template_file) in FAMILIES.items():
        src = pathlib.Path(tok_dir) / base
        dst = pathlib.Path(out_dir) / "tool-templates" / family
        dst.mkdir(parents=True, exist_ok=True)
        cfg = json.loads((src / "tokenizer_config.json").read_text())
        if template_file:
            cfg["chat_template"] = (HERE / "tool_templates" / template_file).read_text()
        (dst / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
        tok = AutoTokenizer.from_pretrained(str(src))
        tok.chat_template = cfg["chat_template"]
        rows = []
        for case in cases(family):
            text = tok.apply_chat_template(shaped(case["messages"]), tools=case["tools"],
                                           add_generation_prompt=case["add_generation_prompt"],
                                           tokenize=False)
            rows.append(dict(case, text=text))
        (dst / "cases.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))
        print(family, len(rows), "cases")
    (pathlib.Path(out_dir) / "tool-templates" / "VERSIONS").write_text(
        f"transformers {transformers.__version__}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
