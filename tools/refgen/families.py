"""families: the tiny random-weight models of issue 14, one row per fixture directory.

Each row names the fixture directory, the tokenizer it is paired with (a directory of
tests/data/tokenizers.tar.xz), the config.json written as the Hub writes it for that family
(the keys real checkpoints carry, e.g. ModernBERT's global_attn_every_n_layers and Gemma 3's
rope_scaling, not the form transformers would re-save), the transformers class that loads
it, and what refgen.py records for it.
"""

BERT_TOKCLS_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
SENTIMENT = ["NEGATIVE", "POSITIVE"]
NLI = ["contradiction", "neutral", "entailment"]


def labels(names):
    return {
        "id2label": {str(i): n for i, n in enumerate(names)},
        "label2id": {n: i for i, n in enumerate(names)},
    }


# ---- encoders -------------------------------------------------------------------------------

# DeBERTa-v3 settings (microsoft/deberta-v3-* carry exactly these keys); position_buckets is
# small so the log-bucketed relative positions are exercised by the test lengths.
DEBERTA = {
    "model_type": "deberta-v2",
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-7,
    "relative_attention": True,
    "max_relative_positions": -1,
    "position_buckets": 8,
    "norm_rel_ebd": "layer_norm",
    "share_att_key": True,
    "pos_att_type": ["p2c", "c2p"],
    "position_biased_input": False,
    "pad_token_id": 0,
    "pooler_hidden_size": 32,
    "pooler_dropout": 0,
    "pooler_hidden_act": "gelu",
}

# all-mpnet-base-v2's keys; the roberta tokenizer has MPNet's special ids (<s>=0, <pad>=1,
# </s>=2, <mask>) so the padding_idx-offset positions are those of the real model.
MPNET = {
    "model_type": "mpnet",
    "vocab_size": 50262,
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    "relative_attention_num_buckets": 32,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

# answerdotai/ModernBERT-base's keys (global_attn_every_n_layers, global/local_rope_theta,
# local_attention); local_attention 16 is a +-8 token window, crossed by most test strings.
MODERNBERT = {
    "model_type": "modernbert",
    "vocab_size": 30522,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "hidden_activation": "gelu",
    "max_position_embeddings": 8192,
    "initializer_range": 0.02,
    "initializer_cutoff_factor": 2.0,
    "norm_eps": 1e-5,
    "norm_bias": False,
    "pad_token_id": 0,
    "eos_token_id": 102,
    "bos_token_id": 101,
    "cls_token_id": 101,
    "sep_token_id": 102,
    "global_rope_theta": 160000.0,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "global_attn_every_n_layers": 3,
    "local_attention": 16,
    "local_rope_theta": 10000.0,
    "embedding_dropout": 0.0,
    "mlp_bias": False,
    "mlp_dropout": 0.0,
    "decoder_bias": True,
    "classifier_pooling": "cls",
    "classifier_dropout": 0.0,
    "classifier_bias": False,
    "classifier_activation": "gelu",
    "deterministic_flash_attn": False,
    "sparse_prediction": False,
    "sparse_pred_ignore_index": -100,
    "tie_word_embeddings": True,
}

# ---- decoders -------------------------------------------------------------------------------

# Qwen3 (Qwen/Qwen3-0.6B keys): per-head q/k RMS norms, head_dim * heads != hidden_size.
QWEN3 = {
    "model_type": "qwen3",
    "vocab_size": 151669,
    "hidden_size": 16,
    "intermediate_size": 48,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "tie_word_embeddings": True,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "use_sliding_window": False,
    "sliding_window": None,
    "max_window_layers": 3,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}

# Gemma 1 (google/gemma-2b keys): multi-query attention (1 kv head), tied head.
GEMMA = {
    "model_type": "gemma",
    "vocab_size": 32000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 8192,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "pad_token_id": 0,
    "eos_token_id": 2,
    "bos_token_id": 1,
    "tie_word_embeddings": True,
    "rope_theta": 10000.0,
    "attention_bias": False,
    "attention_dropout": 0.0,
}

# Gemma 2 (google/gemma-2-2b keys): alternating sliding(8)/global layers, both soft-caps set low
# enough to bite on random weights, query_pre_attn_scalar != head_dim.
GEMMA2 = {
    "model_type": "gemma2",
    "vocab_size": 32000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 8192,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "pad_token_id": 0,
    "eos_token_id": 2,
    "bos_token_id": 1,
    "tie_word_embeddings": True,
    "rope_theta": 10000.0,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "query_pre_attn_scalar": 8,
    "sliding_window": 8,
    "final_logit_softcapping": 8.0,
    "attn_logit_softcapping": 3.0,
    "cache_implementation": "hybrid",
}

# Gemma 3 text (google/gemma-3-1b-it keys): q/k norms, sliding_window_pattern 3 (layers 0,1,3
# local, 2 global), local base 10000 vs global 1e6 with linear rope_scaling on the global layers.
GEMMA3 = {
    "model_type": "gemma3_text",
    "vocab_size": 32000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 32768,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "pad_token_id": 0,
    "eos_token_id": 2,
    "bos_token_id": 1,
    "tie_word_embeddings": True,
    "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "attention_bias": False,
    "attention_dropout": 0.0,
    "query_pre_attn_scalar": 24,
    "sliding_window": 8,
    "sliding_window_pattern": 3,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "cache_implementation": "hybrid",
}

# Phi-3 (microsoft/Phi-3-mini-128k-instruct / Phi-4-mini keys): fused qkv_proj and gate_up_proj,
# LongRoPE with original_max_position_embeddings 16 so prompts of more than 16 tokens and
# generations past position 16 use the long factors, partial_rotary_factor 0.5 (rotary dim 8
# of head_dim 16, 4 factors each), untied lm_head.
PHI3 = {
    "model_type": "phi3",
    "vocab_size": 32000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "max_position_embeddings": 256,
    "original_max_position_embeddings": 16,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-5,
    "use_cache": True,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "partial_rotary_factor": 0.5,
    "rope_scaling": {
        "type": "longrope",
        "short_factor": [1.0, 1.25, 1.5, 2.0],
        "long_factor": [1.5, 3.0, 6.0, 12.0],
    },
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "sliding_window": None,
}

# e5-mistral-7b-instruct's keys (MistralModel), used through sentence-transformers with
# last-token pooling, normalization and query/document prompts.
MISTRAL = {
    "model_type": "mistral",
    "vocab_size": 32000,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-5,
    "use_cache": False,
    "pad_token_id": 2,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "sliding_window": None,
    "attention_dropout": 0.0,
}

E5_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
    "document": "",
}


def with_(base, **kw):
    d = dict(base)
    d.update(kw)
    return d


# Config changes that must change the recorded outputs: each proves the structural feature is
# exercised by the test inputs (refgen.py fails if one changes nothing). Changes that would
# change a weight's shape (DeBERTa's position_buckets, MPNet's bucket count) cannot be loaded
# over the same weights and are not listed.
LONGROPE_OFF = dict(PHI3["rope_scaling"], long_factor=PHI3["rope_scaling"]["short_factor"])
CHECKS = {
    "deberta": [{"norm_rel_ebd": "none"}, {"pos_att_type": ["c2p"]}, {"pos_att_type": ["p2c"]}],
    "modernbert": [{"local_attention": 100000}, {"local_rope_theta": 160000.0}],
    "qwen3": [{"rope_theta": 10000.0}],
    "gemma2": [{"sliding_window": 100000}, {"attn_logit_softcapping": None}, {"final_logit_softcapping": None}],
    "gemma3": [{"sliding_window": 100000}, {"rope_scaling": None}, {"rope_local_base_freq": 1000000.0}],
    "phi3": [{"rope_scaling": LONGROPE_OFF}, {"partial_rotary_factor": 1.0, "rope_scaling": dict(LONGROPE_OFF, short_factor=[1.0] * 8, long_factor=[1.0] * 8)}],
}

# name, tokenizer, config, architecture class, kind, extra
MODELS = [
    # deberta-v2 (v3 settings)
    ("deberta-seqcls", "bert-uncased", with_(DEBERTA, **labels(SENTIMENT)), "DebertaV2ForSequenceClassification", "seqcls", {}),
    ("deberta-nli", "bert-uncased", with_(DEBERTA, **labels(NLI)), "DebertaV2ForSequenceClassification", "nli", {}),
    ("deberta-tokcls", "bert-uncased", with_(DEBERTA, **labels(BERT_TOKCLS_LABELS)), "DebertaV2ForTokenClassification", "tokcls", {}),
    ("deberta-qa", "bert-uncased", DEBERTA, "DebertaV2ForQuestionAnswering", "qa", {}),
    ("deberta-mlm", "bert-uncased", DEBERTA, "DebertaV2ForMaskedLM", "mlm", {}),
    # mpnet
    ("mpnet-mlm", "roberta", MPNET, "MPNetForMaskedLM", "mlm", {}),
    ("mpnet-seqcls", "roberta", with_(MPNET, **labels(SENTIMENT)), "MPNetForSequenceClassification", "seqcls", {}),
    ("mpnet-tokcls", "roberta", with_(MPNET, **labels(BERT_TOKCLS_LABELS)), "MPNetForTokenClassification", "tokcls", {}),
    ("mpnet-qa", "roberta", MPNET, "MPNetForQuestionAnswering", "qa", {}),
    ("mpnet-embed", "roberta", MPNET, "MPNetModel", "embed", {"pooling": "mean", "normalize": True}),
    # modernbert
    ("modernbert-mlm", "bert-uncased", MODERNBERT, "ModernBertForMaskedLM", "mlm", {}),
    ("modernbert-seqcls", "bert-uncased", with_(MODERNBERT, **labels(SENTIMENT)), "ModernBertForSequenceClassification", "seqcls", {}),
    ("modernbert-seqcls-mean", "bert-uncased", with_(MODERNBERT, classifier_pooling="mean", **labels(SENTIMENT)), "ModernBertForSequenceClassification", "seqcls", {}),
    ("modernbert-tokcls", "bert-uncased", with_(MODERNBERT, **labels(BERT_TOKCLS_LABELS)), "ModernBertForTokenClassification", "tokcls", {}),
    ("modernbert-embed", "bert-uncased", MODERNBERT, "ModernBertModel", "embed", {"pooling": "mean", "normalize": True}),
    # decoders
    ("qwen3-lm", "qwen3", QWEN3, "Qwen3ForCausalLM", "lm", {"chat": True, "dtype": "bfloat16"}),
    ("qwen3-lm-untied", "qwen3", with_(QWEN3, tie_word_embeddings=False), "Qwen3ForCausalLM", "lm", {"chat": True, "dtype": "bfloat16"}),
    ("gemma-lm", "llama2", GEMMA, "GemmaForCausalLM", "lm", {}),
    ("gemma2-lm", "llama2", GEMMA2, "Gemma2ForCausalLM", "lm", {"embed_std": 0.06}),
    ("gemma3-lm", "llama2", GEMMA3, "Gemma3ForCausalLM", "lm", {"embed_std": 0.12, "norm_offset": 1.0, "dtype": "bfloat16"}),
    ("phi3-lm", "llama2", PHI3, "Phi3ForCausalLM", "lm", {"dtype": "bfloat16"}),
    # decoder embeddings
    ("mistral-embed", "llama2", MISTRAL, "MistralModel", "embed",
     {"pooling": "lasttoken", "normalize": True, "prompts": E5_PROMPTS, "padding_side": "left"}),
]
