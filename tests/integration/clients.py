"""clients: the real Python clients from PyPI (scripts/hf-client.sh's venv, pinned in
tests/integration/hf-client/requirements.txt) against a running inferd serving the fixture
models, for the `clients` suite (tests/integration/test_clients.c). Every check is on the
client's parsed result objects (their types and values), the values against the fixtures'
transformers references (refs-dev.json, refs.json), never against inferd's own answers:

  clients.py openai URL FIXTURE=DIR...      the `openai` client on /v1: completions and chat
      (greedy text = the refs' greedy_text, streamed chunks add up to it), tool calls of the
      tool fixtures (the refs' call and prompt token count, the call and its result sent back
      for a second turn, streamed through the SDK's accumulator), response_format json_schema
      parsed into a pydantic model (chat.completions.parse, several seeds, streamed the same),
      embeddings (float and base64) = sentence-transformers', an unknown model's error.
  clients.py hf URL FIXTURE=DIR...          huggingface_hub's InferenceClient on the HF routes
      (/models/NAME: text, token and zero-shot classification, fill-mask, question answering,
      feature extraction), TGI's (POST /: text_generation with details, streamed), OpenAI chat
      (chat_completion with tools, streamed, response_format) and TEI's (/embed, /predict).
  clients.py tei URL embed=DIR              InferenceClient(URL).feature_extraction: POST / of
      a daemon serving only bert-embed (TEI's root), the sentence-transformers embeddings.
  clients.py langchain URL FIXTURE=DIR...   LangChain's ChatOpenAI with a tool (bind_tools):
      the AIMessage's parsed tool_calls, the tool's result sent back, streamed chunks merged.

FIXTURE=DIR names a fixture directory: gpt2 (gpt2-lm), qwen (tools-qwen3), llama
(tools-llama3.1), seqcls, tokcls, mlm, nli, qa, embed (bert-*). The daemon serves them as
gpt2, qwen, llama, chat (llama-lm with the Llama 3 template), seqcls, tokcls, mlm, nli, qa,
embed (sentence-embeddings) and features (bert-embed, feature-extraction). The last line is
"clients: ok" when every check held; a failed check raises."""

import base64
import json
import math
import os
import struct
import sys
from typing import Literal

TOL = 1e-4  # the tolerance of the daemon's own suites against the same refs
KEY = "inferd-test"
WEATHER_ARGS = '{"city": "Paris"}'  # what both tool fixtures call get_weather with


def refs(fix, name, file="refs-dev.json"):
    with open(os.path.join(fix[name], file), encoding="utf-8") as f:
        return json.load(f)


def close(got, want, what, tol=TOL):
    assert isinstance(got, float) and math.isfinite(got), f"{what}: {got!r} is not a float"
    assert abs(got - want) <= tol, f"{what}: {got} vs transformers {want}"


def close_all(got, want, what):
    got, want = list(got), list(want)
    assert len(got) == len(want), f"{what}: {len(got)} values, transformers {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        close(float(g), w, f"{what}[{i}]")


# ---- the openai client ----

def openai_completions(c, fix):
    gens = refs(fix, "gpt2")["generations"]
    for g in gens[:2]:
        n = len(g["greedy_ids"])
        r = c.completions.create(model="gpt2", prompt=g["prompt"], max_tokens=n, temperature=0)
        assert r.object == "text_completion" and r.choices[0].text == g["greedy_text"], r
        assert r.choices[0].finish_reason == "length", r.choices[0]
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(g["input_ids"]), n)
        text, usage, chunks = "", None, 0
        for ch in c.completions.create(model="gpt2", prompt=g["prompt"], max_tokens=n,
                                       temperature=0, stream=True,
                                       stream_options={"include_usage": True}):
            chunks += 1
            text += "".join(x.text for x in ch.choices)
            usage = ch.usage or usage
        assert text == g["greedy_text"], f"streamed {text!r}"
        counts = lambda u: (u.prompt_tokens, u.completion_tokens, u.total_tokens)
        assert chunks > n // 2 and counts(usage) == counts(r.usage), (chunks, usage)
        # the same prompt just ran: the prefix cache holds all of it but the token it computes
        cached = usage.prompt_tokens_details.cached_tokens
        assert cached == usage.prompt_tokens - 1, usage


def openai_chat(c, fix):
    msgs = [{"role": "user", "content": "Hello!"}]
    r = c.chat.completions.create(model="chat", messages=msgs, max_tokens=12, temperature=0)
    m = r.choices[0].message
    assert r.object == "chat.completion" and m.role == "assistant" and m.content, r
    assert r.usage.completion_tokens == 12 and r.choices[0].finish_reason == "length", r
    text, roles, finish = "", [], None
    for ch in c.chat.completions.create(model="chat", messages=msgs, max_tokens=12,
                                        temperature=0, stream=True):
        d = ch.choices[0].delta
        roles += [d.role] if d.role else []
        text += d.content or ""
        finish = ch.choices[0].finish_reason or finish
    assert (text, roles, finish) == (m.content, ["assistant"], "length"), (text, roles, finish)


def openai_tools(c, fix):
    import openai
    for model in ("qwen", "llama"):
        turns = refs(fix, model, "refs.json")
        first, second = turns[0], turns[1]
        r = c.chat.completions.create(model=model, messages=first["messages"],
                                      tools=first["tools"], temperature=0, max_tokens=32)
        ch = r.choices[0]
        assert ch.finish_reason == "tool_calls" and ch.message.content is None, ch
        assert r.usage.prompt_tokens == first["prompt_tokens"], (model, r.usage)
        [call] = ch.message.tool_calls
        assert isinstance(call, openai.types.chat.ChatCompletionMessageFunctionToolCall), call
        assert call.type == "function" and call.id.startswith("call_"), call
        assert (call.function.name, call.function.arguments) == \
            (first["call"]["name"], first["call"]["arguments"]), call
        # the call and its result sent back: the refs' second turn (its prompt token count)
        back = first["messages"] + [
            ch.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": second["messages"][2]["content"]}]
        r2 = c.chat.completions.create(model=model, messages=back, tools=first["tools"],
                                       temperature=0, max_tokens=32)
        assert r2.usage.prompt_tokens == second["prompt_tokens"], (model, r2.usage)
        assert r2.choices[0].message.tool_calls[0].function.name == second["call"]["name"]
        # streamed, put together by the SDK's accumulator
        with c.chat.completions.stream(model=model, messages=first["messages"],
                                       tools=first["tools"], temperature=0,
                                       max_tokens=32) as s:
            kinds = [e.type for e in s]
            final = s.get_final_completion()
        fc = final.choices[0]
        assert fc.finish_reason == "tool_calls", fc
        [sc] = fc.message.tool_calls
        assert (sc.function.name, sc.function.arguments) == \
            (call.function.name, call.function.arguments), sc
        assert "tool_calls.function.arguments.done" in kinds, kinds


def openai_schema(c, fix):
    from pydantic import BaseModel, Field

    class Weather(BaseModel):
        city: str = Field(max_length=6)
        temp: int = Field(ge=-40, le=50)
        unit: Literal["C", "F"]
        rain: bool

    msgs = [{"role": "user", "content": "Weather?"}]
    for seed in (1, 2, 3):
        args = dict(model="chat", messages=msgs, max_tokens=120, seed=seed, temperature=1.0,
                    response_format=Weather)
        r = c.chat.completions.parse(**args)
        m = r.choices[0].message
        assert r.choices[0].finish_reason == "stop", r.choices[0]
        assert isinstance(m.parsed, Weather), m  # pydantic validated every constraint
        assert m.parsed == Weather.model_validate_json(m.content)
        with c.chat.completions.stream(**args) as s:
            final = s.get_final_completion()
        assert final.choices[0].message.parsed == m.parsed, (final, m)
    # the plain dict form: the content parses and validates all the same
    schema = Weather.model_json_schema()
    r = c.chat.completions.create(model="chat", messages=msgs, max_tokens=120, seed=7,
                                  temperature=1.0, response_format={
                                      "type": "json_schema",
                                      "json_schema": {"name": "weather", "schema": schema}})
    Weather.model_validate_json(r.choices[0].message.content)


def openai_embeddings(c, fix):
    se = refs(fix, "embed")["sentence_embeddings"][:5]
    r = c.embeddings.create(model="embed", input=[x["text"] for x in se])
    assert r.object == "list" and r.model == "embed" and len(r.data) == len(se), r
    assert r.usage.prompt_tokens > len(se), r.usage
    for i, (d, x) in enumerate(zip(r.data, se)):
        assert d.index == i and d.object == "embedding", d
        close_all(d.embedding, x["embedding"], f"embedding {i}")
    b = c.embeddings.create(model="embed", input=se[0]["text"], encoding_format="base64")
    raw = base64.b64decode(b.data[0].embedding)
    close_all(struct.unpack(f"<{len(raw) // 4}f", raw), se[0]["embedding"], "base64 embedding")


def openai_errors(c, fix):
    import openai
    try:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    except openai.NotFoundError as e:
        assert e.code == "model_not_found" and e.param == "model", e.body
    else:
        raise AssertionError("an unknown model answered")
    names = {m.id for m in c.models.list()}
    assert {"gpt2", "qwen", "llama", "chat", "embed"} <= names, names


def run_openai(url, fix):
    import openai
    c = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    for f in (openai_completions, openai_chat, openai_tools, openai_schema, openai_embeddings,
              openai_errors):
        f(c, fix)
    return f"openai {openai.__version__}"


# ---- huggingface_hub's InferenceClient ----

def hf_pipelines(url, fix):
    from huggingface_hub import InferenceClient
    from huggingface_hub.inference._generated import types as T

    def client(name):
        return InferenceClient(model=f"{url}/models/{name}", token=KEY)

    seqcls, ran = client("seqcls"), {}
    for x in refs(fix, "seqcls")["pipeline"]:
        if x["parameters"] or not isinstance(x["input"], str):
            continue
        ran["text_classification"] = ran.get("text_classification", 0) + 1
        # inferd answers transformers' [{label, score}] (the top label); the client gives the
        # first element (DECISIONS.md)
        got = seqcls.text_classification(x["input"])
        got = got if isinstance(got, list) else [got]
        for g, w in zip(got, x["output"], strict=True):
            assert isinstance(g, T.TextClassificationOutputElement) and g.label == w["label"]
            close(g.score, w["score"], f"text_classification {x['input']!r}")
    tok = client("tokcls")
    for x in refs(fix, "tokcls")["pipeline"][:8]:
        if set(x["parameters"]) - {"aggregation_strategy"} or not isinstance(x["input"], str):
            continue
        ran["token_classification"] = ran.get("token_classification", 0) + 1
        got = tok.token_classification(x["input"], **x["parameters"])
        assert len(got) == len(x["output"]), (got, x["output"])
        for g, w in zip(got, x["output"]):
            assert isinstance(g, T.TokenClassificationOutputElement), g
            assert (g.entity_group or g.entity) == w.get("entity_group", w.get("entity"))
            assert (g.word, g.start, g.end) == (w["word"], w["start"], w["end"]), (g, w)
            close(g.score, w["score"], f"token_classification {g.word}")
    mlm = client("mlm")
    for x in refs(fix, "mlm")["pipeline"]:
        if x["parameters"] or not isinstance(x["input"], str):
            continue
        ran["fill_mask"] = ran.get("fill_mask", 0) + 1
        got = mlm.fill_mask(x["input"])
        assert [(g.token, g.token_str, g.sequence) for g in got] == \
            [(w["token"], w["token_str"], w["sequence"]) for w in x["output"]], got
        close_all([g.score for g in got], [w["score"] for w in x["output"]], "fill_mask")
        assert all(isinstance(g, T.FillMaskOutputElement) for g in got)
    nli = client("nli")
    for x in refs(fix, "nli")["pipeline"]:
        i, p = x["input"], x["parameters"]
        ran["zero_shot"] = ran.get("zero_shot", 0) + 1
        got = nli.zero_shot_classification(i["sequence"], i["candidate_labels"],
                                           multi_label=p.get("multi_label"),
                                           hypothesis_template=p.get("hypothesis_template"))
        assert all(isinstance(g, T.ZeroShotClassificationOutputElement) for g in got), got
        assert [g.label for g in got] == x["output"]["labels"], (got, x["output"])
        close_all([g.score for g in got], x["output"]["scores"], "zero_shot_classification")
    qa = client("qa")
    for x in refs(fix, "qa")["logits"][:3]:
        got = qa.question_answering(question=x["question"], context=x["context"])
        assert isinstance(got, T.QuestionAnsweringOutputElement), got
        assert got.answer == x["context"][got.start:got.end] and 0 <= got.score <= 1, got
    assert len(ran) == 4 and min(ran.values()) >= 2, ran  # no check skipped wholesale
    embed = refs(fix, "embed")
    feats = client("features")
    for x in embed["token_features"]:
        got = feats.feature_extraction(x["text"])
        assert got.dtype.name == "float32" and got.shape == (1, len(x["last_hidden_state"]),
                                                             len(x["last_hidden_state"][0]))
        close_all(got.reshape(-1), sum(x["last_hidden_state"], []), "feature_extraction")
    sent = client("embed")
    for x in embed["sentence_embeddings"][:3]:
        got = sent.feature_extraction(x["text"])
        assert got.shape == (len(x["embedding"]),), got.shape
        close_all(got, x["embedding"], "sentence embedding")


def hf_tei(url, fix):
    from huggingface_hub import InferenceClient
    tei = InferenceClient(model=f"{url}/embed", token=KEY)
    for x in refs(fix, "embed")["sentence_embeddings"][:3]:
        got = tei.feature_extraction(x["text"], normalize=True, truncate=True)
        assert got.dtype.name == "float32" and got.shape == (1, len(x["embedding"])), got.shape
        close_all(got[0], x["embedding"], "TEI /embed")
        raw = tei.feature_extraction(x["text"], normalize=False)[0]
        norm = math.sqrt(sum(float(v) ** 2 for v in raw))
        close_all(raw / norm, x["embedding"], "TEI /embed unnormalized")
    pred = InferenceClient(model=f"{url}/predict", token=KEY)
    x = refs(fix, "seqcls")["pipeline"][0]
    got = pred.text_classification(x["input"])
    got = got if isinstance(got, list) else [got]
    assert got[0].label == x["output"][0]["label"], (got, x)
    close(got[0].score, x["output"][0]["score"], "TEI /predict")


def hf_generation(url, fix):
    from huggingface_hub import InferenceClient
    from huggingface_hub.inference._generated import types as T
    tgi = InferenceClient(model=url, token=KEY)  # POST /: the first text-generation model
    for g in refs(fix, "gpt2")["generations"][:2]:
        n = len(g["greedy_ids"])
        args = dict(max_new_tokens=n, do_sample=False, return_full_text=False)
        out = tgi.text_generation(g["prompt"], details=True, **args)
        assert isinstance(out, T.TextGenerationOutput), out
        assert out.generated_text == g["greedy_text"], out.generated_text
        d = out.details
        assert (d.finish_reason, d.generated_tokens) == ("length", n), d
        assert [t.id for t in d.tokens] == g["greedy_ids"], d.tokens
        assert all(isinstance(t.logprob, float) and t.logprob <= 0 for t in d.tokens)
        assert tgi.text_generation(g["prompt"], **args) == g["greedy_text"]
        full = tgi.text_generation(g["prompt"], max_new_tokens=n, do_sample=False)
        assert full == g["prompt"] + g["greedy_text"], full  # TGI's default for POST /
        chunks = list(tgi.text_generation(g["prompt"], details=True, stream=True, **args))
        assert all(isinstance(c, T.TextGenerationStreamOutput) for c in chunks)
        assert [c.token.id for c in chunks] == g["greedy_ids"], chunks
        assert "".join(c.token.text for c in chunks) == g["greedy_text"]
        last = chunks[-1]
        assert last.generated_text == g["greedy_text"] and last.details.finish_reason == "length"
        assert all(c.details is None for c in chunks[:-1])
        text = "".join(tgi.text_generation(g["prompt"], stream=True, **args))
        assert text == g["greedy_text"], text


def hf_chat(url, fix):
    from huggingface_hub import InferenceClient
    from huggingface_hub.inference._generated import types as T
    chat = InferenceClient(base_url=url, token=KEY)
    for model in ("qwen", "llama"):
        first = refs(fix, model, "refs.json")[0]
        out = chat.chat_completion(first["messages"], model=model, tools=first["tools"],
                                   temperature=0, max_tokens=32)
        assert isinstance(out, T.ChatCompletionOutput), out
        c0 = out.choices[0]
        assert c0.finish_reason == "tool_calls" and out.usage.prompt_tokens == \
            first["prompt_tokens"], out
        [call] = c0.message.tool_calls
        assert (call.function.name, call.function.arguments) == \
            (first["call"]["name"], first["call"]["arguments"]), call
        name, args = None, ""
        for ch in chat.chat_completion(first["messages"], model=model, tools=first["tools"],
                                       temperature=0, max_tokens=32, stream=True):
            assert isinstance(ch, T.ChatCompletionStreamOutput), ch
            for tc in ch.choices[0].delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
        assert (name, args) == (first["call"]["name"], first["call"]["arguments"])
    msgs = [{"role": "user", "content": "Hello!"}]
    plain = chat.chat_completion(msgs, model="chat", max_tokens=12, temperature=0)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chat.chat_completion(
        msgs, model="chat", max_tokens=12, temperature=0, stream=True) if ch.choices)
    assert streamed == plain.choices[0].message.content and plain.usage.completion_tokens == 12
    # response_format json_schema: the client sends TGI's {"type": "json_object", "value"}
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 6},
                                               "temp": {"type": "integer", "minimum": -40,
                                                        "maximum": 50}},
              "required": ["city", "temp"], "additionalProperties": False}
    for seed in (1, 2):
        out = chat.chat_completion(msgs, model="chat", max_tokens=80, seed=seed,
                                   temperature=1.0, response_format={
                                       "type": "json_schema",
                                       "json_schema": {"name": "w", "schema": schema}})
        doc = json.loads(out.choices[0].message.content)
        assert set(doc) == {"city", "temp"} and isinstance(doc["city"], str), doc
        assert len(doc["city"]) <= 6 and type(doc["temp"]) is int and -40 <= doc["temp"] <= 50


def run_hf(url, fix):
    import huggingface_hub
    for f in (hf_pipelines, hf_tei, hf_generation, hf_chat):
        f(url, fix)
    return f"huggingface_hub {huggingface_hub.__version__}"


# ---- LangChain's ChatOpenAI ----

def run_langchain(url, fix):
    import langchain_openai
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        """Temperature and sky of a city."""
        assert city == "Paris", city
        return '{"temperature": 21}'

    for model in ("qwen", "llama"):
        llm = ChatOpenAI(base_url=url + "/v1", api_key=KEY, model=model, temperature=0,
                         max_tokens=32, max_retries=0, timeout=60)
        bound = llm.bind_tools([get_weather])
        msgs = [HumanMessage("What is the weather in Paris?")]
        ai = bound.invoke(msgs)
        assert isinstance(ai, AIMessage) and not ai.invalid_tool_calls, ai
        [call] = ai.tool_calls
        assert call["name"] == "get_weather" and call["args"] == json.loads(WEATHER_ARGS), call
        assert call["id"].startswith("call_") and call["type"] == "tool_call", call
        assert ai.response_metadata["finish_reason"] == "tool_calls", ai.response_metadata
        assert ai.usage_metadata["output_tokens"] > 0, ai.usage_metadata
        result = get_weather.invoke(call)  # a ToolMessage for the call's id
        assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"], result
        ai2 = bound.invoke(msgs + [ai, result])
        assert ai2.usage_metadata["input_tokens"] > ai.usage_metadata["input_tokens"]
        assert [c["name"] for c in ai2.tool_calls] == ["get_weather"], ai2
        merged = None
        for chunk in bound.stream(msgs):
            merged = chunk if merged is None else merged + chunk
        assert [(c["name"], c["args"]) for c in merged.tool_calls] == \
            [(call["name"], call["args"])], merged
    return "langchain-openai " + getattr(langchain_openai, "__version__", "")


def run_tei_root(url, fix):
    """InferenceClient(URL), as TEI's docs use it: POST / of a daemon serving embeddings only."""
    import huggingface_hub
    from huggingface_hub import InferenceClient
    tei = InferenceClient(model=url, token=KEY)
    for x in refs(fix, "embed")["sentence_embeddings"][:3]:
        got = tei.feature_extraction(x["text"])
        assert got.dtype.name == "float32" and got.shape == (1, len(x["embedding"])), got.shape
        close_all(got[0], x["embedding"], "TEI POST /")
    return f"huggingface_hub {huggingface_hub.__version__} on TEI's root"


RUNS = {"openai": run_openai, "hf": run_hf, "langchain": run_langchain, "tei": run_tei_root}


def main(argv):
    if len(argv) < 3 or argv[1] not in RUNS or not all("=" in a for a in argv[3:]):
        print(__doc__, file=sys.stderr)
        return 2
    fix = dict(a.split("=", 1) for a in argv[3:])
    print(f"clients: {RUNS[argv[1]](argv[2].rstrip('/'), fix)}")
    print("clients: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
