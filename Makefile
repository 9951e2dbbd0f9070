# inferd front door: make deps | deps-test | build | test | test-asan | test-tsan | test-valgrind | fuzz | run | bench | bench-load | bench-generate | bench-llamacpp | bench-families | bench-s2s | bench-memory | format
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
MESON_OPTS ?=

.PHONY: all deps build test test-asan test-tsan test-valgrind run bench bench-load format format-check clean

all: build

# What building and serving need (Debian packages); the tests add nginx, prometheus, openssl,
# valgrind, the openai npm client and the Python clients (huggingface_hub, openai,
# langchain-openai) from PyPI in a venv under $(BUILD) (deps-test). Building alone never
# installs anything.
deps:
	@sh scripts/deps.sh

.PHONY: deps-test
deps-test: deps
	@sh scripts/deps.sh --test
	@sh scripts/openai-client.sh --install
	@sh scripts/hf-client.sh --install $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Every test (unit, parity against Hugging Face fixtures, CLI) in one Check runner;
# its last line is "N passed, N failed".
test: deps-test build
	@sh scripts/check-layers.sh
	@$(BUILD)/tests/inferd-tests

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

test-asan: deps-test $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		CK_FORK=no $(ASAN_BUILD)/tests/inferd-tests

$(TSAN_BUILD)/build.ninja:
	meson setup $(TSAN_BUILD) -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false

# The daemon's integration suites (and any abuse suite in tests/suites.def) under
# ThreadSanitizer; tests/tsan.supp names only the uninstrumented libgomp and oneDNN. setarch -R:
# GCC 12's TSan fails to map its shadow memory on kernels with vm.mmap_rnd_bits above 28.
TSAN_SUITES = serve serve_tei serve_errors serve_load serve_generate gen_sched gen_sched_prefix serve_t5 \
	$(shell sed -n 's/^SUITE(\(.*abuse.*\))$$/\1/p' tests/suites.def)
test-tsan: deps-test $(TSAN_BUILD)/build.ninja
	ninja -C $(TSAN_BUILD)
	@TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1" CK_FORK=no \
		setarch $$(uname -m) -R $(TSAN_BUILD)/tests/inferd-tests $(TSAN_SUITES)

# Unit suites under valgrind (PCRE2's JIT off: memcheck cannot see into JIT code).
test-valgrind: deps-test build
	@INFERD_NO_JIT=1 CK_FORK=no valgrind --error-exitcode=9 --leak-check=full -q \
		$(BUILD)/tests/inferd-tests nstr normalize pretokenize tok_models postprocess decode tokenizer \
		loader pipelines config metrics

# The daemon on the bundled spam classifier (config/inferd.yaml, port 8080), in the
# foreground until Ctrl-C (SIGINT drains and exits 0). CONFIG=FILE serves another config.
CONFIG ?= config/inferd.yaml
run: deps build
	@echo "inferd: try  curl -s localhost:8080/models/spam -d '{\"inputs\": \"WIN a FREE iPhone now!!!\"}'"
	@exec $(BUILD)/inferd serve --config $(CONFIG)

bench: deps build
	@sh bench/run_tokenizer.sh $(BUILD)

# The daemon under load (spam classifier, batching on/off, 1/16/64 connections, soak).
bench-load: deps build
	@bash bench/run_load.sh $(BUILD)

# Text generation next to PyTorch eager (bench/run_generate.sh): random ~124M-parameter GPT-2
# and LLaMA decoders; prefill, time to first token, decode at 1 and 16 streams, interleaved rounds.
.PHONY: bench-generate
bench-generate: deps build
	@sh bench/run_generate.sh $(BUILD)

# inferd next to llama.cpp on the generation benchmark's random LLaMA (bench/run_llamacpp.sh):
# llama.cpp built from its source into $(BUILD)/bench-llamacpp (bench/llamacpp.sh; cmake from
# scripts/deps.sh --llamacpp), the model as GGUF, greedy ids and logits checked, then
# fp32-F32, bf16-BF16, int8-Q8_0, int4-Q4_0 in interleaved rounds.
.PHONY: bench-llamacpp
bench-llamacpp: deps build
	@sh scripts/deps.sh --llamacpp
	@sh bench/llamacpp.sh $(BUILD)
	@sh bench/run_llamacpp.sh $(BUILD)

# The issue-14 families at realistic sizes next to PyTorch eager (bench/run_families.sh):
# deberta-v3-base, all-mpnet-base-v2, modernbert-base, Qwen3-0.6B, Gemma-3-1B, Phi-3.5-mini
# (8 layers); needs a venv with torch + transformers (PYTHON=, default /work/venv-refgen).
.PHONY: bench-families
bench-families: build
	@sh bench/run_families.sh $(BUILD)

# Summarization / translation next to CTranslate2 and PyTorch eager (bench/run_s2s.sh):
# random-weight distilbart-cnn-12-6- and opus-mt-en-de-shaped models, greedy and 4 beams,
# batch 1 and 16, fp32 and int8; needs a venv with torch, transformers 4.x and ctranslate2
# (PYTHON=, default /work/venv-refgen4).
.PHONY: bench-s2s
bench-s2s: build
	@sh bench/run_s2s.sh $(BUILD)

# A served model's resident memory and start-up time next to its weights' bytes at each dtype
# (bench/run_memory.sh): the bundled classifier (the fixed cost), bert-base and the 124M LLaMA.
.PHONY: bench-memory
bench-memory: build
	@sh bench/run_memory.sh $(BUILD)

# The deployment files (scripts/check-deploy.sh): Kubernetes manifests against the API schemas
# (npm validators installed once into /var/cache/inferd-ci), the ConfigMap's config on the
# daemon, the systemd unit, and the Dockerfile built and run in Debian 12 chroots (as root,
# about a minute; SKIP_DOCKER=1 leaves it out). Ends with "deploy: N passed, N failed".
# libFuzzer harnesses (tests/fuzz) with clang and ASan+UBSan in $(FUZZ_BUILD), each run
# FUZZ_SECONDS on a copy of its corpus; installs clang first when missing (scripts/deps.sh --fuzz).
# Fails naming the reproducer on any crash, leak or timeout. FUZZERS="tokenizer ..." runs some.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS ?=
.PHONY: fuzz
fuzz:
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZERS)

.PHONY: test-deploy
test-deploy: deps-test build
	@bash scripts/check-deploy.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

# Every target with one line (tests/unit/test_cli.c checks that none is missing).
.PHONY: help
help:
	@echo "make targets (BUILD=$(BUILD); CONFIG=FILE for run):"
	@echo "  all             = build"
	@echo "  deps            install the Debian packages building and serving need (scripts/deps.sh)"
	@echo "  deps-test       also what the tests need: nginx, prometheus, openssl, valgrind, the openai npm client, the Python clients (venv in $(BUILD)/hf-client)"
	@echo "  build           meson setup + ninja in $(BUILD): build/inferd, the tests, the benchmarks (installs nothing)"
	@echo "  test            every test suite in one Check runner (ends 'N passed, N failed')"
	@echo "  test-asan       the tests under AddressSanitizer + UBSan ($(ASAN_BUILD))"
	@echo "  test-tsan       the daemon's integration suites under ThreadSanitizer ($(TSAN_BUILD))"
	@echo "  test-valgrind   the unit suites under valgrind memcheck"
	@echo "  test-deploy     the deployment files: Kubernetes, systemd, Dockerfile (scripts/check-deploy.sh)"
	@echo "  run             the daemon on config/inferd.yaml (CONFIG=FILE for another), port 8080"
	@echo "  bench           tokenizer speed (bench/run_tokenizer.sh)"
	@echo "  bench-load      the daemon under HTTP load (bench/run_load.sh)"
	@echo "  bench-generate  text generation next to PyTorch (bench/run_generate.sh)"
	@echo "  bench-families  the issue-14 families at real sizes next to PyTorch (bench/run_families.sh)"
	@echo "  bench-s2s       summarization/translation next to CTranslate2 and PyTorch (bench/run_s2s.sh)"
	@echo "  bench-llamacpp  text generation next to llama.cpp built from source (bench/run_llamacpp.sh)"
	@echo "  bench-memory    a served model's memory and start-up time per dtype (bench/run_memory.sh)"
	@echo "  format          clang-format every C file in place"
	@echo "  format-check    clang-format --dry-run: fails on any difference"
	@echo "  fuzz            the libFuzzer harnesses, FUZZ_SECONDS each (clang installed when missing)"
	@echo "  clean           remove $(BUILD), $(ASAN_BUILD), $(TSAN_BUILD) and $(FUZZ_BUILD)"
	@echo "  help            this list"
