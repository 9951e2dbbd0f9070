#!/usr/bin/env python3
"""s2s_pipelines: the issue-16 pipeline references for the server side, made with transformers
4.x (requirements-4x.txt; 5.x removed these pipelines): `summarization`, `translation` and
`translation_xx_to_yy` on the t5-s2s fixture given T5's task_specific_params (as t5-small's
config.json has them, with short lengths), and `text-generation` with beam search on
llama-lm. Records, for each task, the generation config the pipeline builds (its defaults:
pipeline default config, the model's generation_config.json, task_specific_params) and the
pipeline's outputs for several parameter sets (beam settings, num_return_sequences lists,
return_tensors); and the same tasks on t5-s2s as it is ("t5_plain": the pipelines' own
defaults, num_beams 4 and max_new_tokens 256).

Usage: s2s_pipelines.py MODELS_DIR OUT_DIR
  MODELS_DIR  an unpacked tests/data/models-other.tar.xz ("models/" inside it)
  OUT_DIR     receives pipelines/s2s.json
make_pipeline_refs.sh packs tests/data/issue16-pipelines.tar.xz; see README.md.
"""

import json
import os
import sys
import warnings

import torch
import transformers
from transformers import (AutoModelForCausalLM, AutoModelForSeq2SeqLM, PreTrainedTokenizerFast,
                          pipeline)

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Paris is the capital of France and its largest city.",
]
# T5's task_specific_params as t5-small's config.json writes them, lengths shortened so that
# the random-weight fixture's outputs stay short (the defaults run as they are)
TASK_PARAMS = {
    "summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 14,
                      "min_length": 6, "no_repeat_ngram_size": 3, "num_beams": 4,
                      "prefix": "summarize: "},
    "translation_en_to_de": {"early_stopping": True, "max_length": 12, "num_beams": 4,
                             "prefix": "translate English to German: "},
    "translation_en_to_fr": {"early_stopping": True, "max_length": 10, "num_beams": 3,
                             "prefix": "translate English to French: "},
}
# generation_config.json of the fixture: t5-s2s's plus a max_length that is not 20, so that the
# pipelines drop their max_new_tokens=256 default and the task's max_length applies
GEN_MAX_LENGTH = 16
CALLS = {
    "summarization": [
        {},
        {"max_new_tokens": 7},
        {"num_beams": 2, "max_new_tokens": 6, "num_return_sequences": 2},
        {"num_beams": 3, "max_new_tokens": 8, "no_repeat_ngram_size": 2, "length_penalty": 0.5,
         "early_stopping": "never", "min_length": 0},
        {"num_beams": 1, "max_new_tokens": 6, "min_length": 0, "no_repeat_ngram_size": 0},
        {"num_beams": 4, "max_new_tokens": 6, "num_return_sequences": 3,
         "repetition_penalty": 1.3, "min_new_tokens": 4, "forced_eos_token_id": 1},
        {"num_beams": 2, "max_new_tokens": 5, "return_tensors": True, "num_return_sequences": 2},
        # single ids, a pair, a lone eos (dropped by the processor) and a triple
        {"num_beams": 2, "max_new_tokens": 5, "return_tensors": True, "num_return_sequences": 2,
         "bad_words_ids": [[2061], [204, 1051], [1], [614, 614, 54]]},
        {"num_beams": 1, "max_new_tokens": 6, "min_length": 0, "no_repeat_ngram_size": 0,
         "return_tensors": True, "bad_words_ids": [[2061], [204, 1051], [614, 614]]},
    ],
    "translation_en_to_de": [
        {},
        {"num_beams": 4, "max_new_tokens": 6, "num_return_sequences": 4},
        {"num_beams": 2, "max_length": 6, "clean_up_tokenization_spaces": True},
    ],
    "translation": [{}],
    "translation_en_to_fr": [{"max_new_tokens": 5}],
}
# t5-s2s as it is (no task_specific_params, generation_config.json without max_length): the
# pipelines' own defaults (num_beams 4, max_new_tokens 256) apply
PLAIN_CALLS = {
    "summarization": [{}, {"max_length": 12}],
    "translation_en_to_de": [{"num_beams": 2, "max_new_tokens": 5}],
}
LM_CALLS = [
    {"num_beams": 3, "max_new_tokens": 8, "num_return_sequences": 2},
    {"num_beams": 2, "max_new_tokens": 6, "return_full_text": False, "length_penalty": 0.0},
    {"num_beams": 4, "max_new_tokens": 7, "no_repeat_ngram_size": 2, "early_stopping": True},
]
GEN_KEYS = ("num_beams", "num_return_sequences", "max_length", "max_new_tokens", "min_length",
            "min_new_tokens", "length_penalty", "early_stopping", "no_repeat_ngram_size",
            "forced_bos_token_id", "forced_eos_token_id", "do_sample", "repetition_penalty")


def plain(x):
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x


def t5_tasks(models, out, plain_model=False):
    d = os.path.join(models, "models", "t5-s2s")
    gen = json.load(open(os.path.join(d, "generation_config.json")))
    if not plain_model:
        gen["max_length"] = GEN_MAX_LENGTH
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"),
                                  eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                  model_max_length=512)
    task_params = {} if plain_model else TASK_PARAMS
    res = {"config_task_specific_params": task_params, "generation_config": gen, "tasks": {}}
    for task, calls in (PLAIN_CALLS if plain_model else CALLS).items():
        model = AutoModelForSeq2SeqLM.from_pretrained(d).eval()
        # as beams.py: transformers 4 rescales a tied T5's decoder output, which this fixture
        # (made with 5.x, "scale_decoder_outputs": false) does not do
        model.config.tie_word_embeddings = False
        if task_params:
            model.config.task_specific_params = json.loads(json.dumps(task_params))
        model.generation_config = transformers.GenerationConfig(**gen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = pipeline(task, model=model, tokenizer=tok)
        gc = {k: getattr(pipe.generation_config, k) for k in GEN_KEYS}
        entry = {"pipeline_task": pipe.task, "prefix": pipe.prefix, "generation_config": gc,
                 "calls": []}
        for params in calls:
            for text in TEXTS[:1] if plain_model else TEXTS:
                with torch.no_grad():
                    o = pipe(text, **params)
                entry["calls"].append({"input": text, "parameters": params, "output": plain(o)})
        res["tasks"][task] = entry
    return res


def llama(models):
    d = os.path.join(models, "models", "llama-lm")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"),
                                  bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  clean_up_tokenization_spaces=False)
    model = AutoModelForCausalLM.from_pretrained(d).eval()
    pipe = pipeline("text-generation", model=model, tokenizer=tok)
    calls = []
    ids = tok("ité Select", add_special_tokens=False).input_ids
    lm_calls = LM_CALLS + [{"num_beams": 3, "max_new_tokens": 6, "num_return_sequences": 2,
                            "bad_words_ids": [[ids[0]], ids[:2]]}]
    # greedy with bad words: the greedy continuation's second id banned after its first, its
    # fourth alone
    with torch.no_grad():
        g = model.generate(tok("Once upon a time", return_tensors="pt").input_ids,
                           do_sample=False, max_new_tokens=6)[0, -6:].tolist()
    lm_calls.append({"max_new_tokens": 8, "bad_words_ids": [[g[3]], [g[0], g[1]]]})
    for params in lm_calls:
        for text in ("Once upon a time", "The capital of France is"):
            with torch.no_grad():
                o = pipe(text, do_sample=False, **params)
            calls.append({"input": text, "parameters": params, "output": plain(o)})
    return calls


def main():
    models, out = sys.argv[1:3]
    os.makedirs(os.path.join(out, "pipelines"), exist_ok=True)
    if sys.argv[3:] == ["--llama"]:
        # the text-generation pipeline as transformers 5 makes it (the new text decoded alone),
        # over the file the transformers 4 run wrote (its seq2seq pipelines are gone in 5)
        path = os.path.join(out, "pipelines", "s2s.json")
        refs = json.load(open(path))
        refs["llama_text_generation"] = llama(models)
        refs["versions_llama_text_generation"] = {"transformers": transformers.__version__,
                                                  "torch": torch.__version__}
        json.dump(refs, open(path, "w"), indent=1)
        return
    refs = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                         "generator": "tools/refgen/s2s_pipelines.py"},
            "t5_tasks": t5_tasks(models, out), "t5_plain": t5_tasks(models, out, True),
            "llama_text_generation": llama(models)}
    json.dump(refs, open(os.path.join(out, "pipelines", "s2s.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
