# inferd front door: make deps | build | test | test-asan | test-valgrind | fuzz | run | bench | bench-load | format
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?=

.PHONY: all deps build test test-asan test-valgrind run bench bench-load format format-check clean

all: build

deps:
	@sh scripts/deps.sh
	@sh scripts/openai-client.sh --install

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Every test (unit, parity against Hugging Face fixtures, CLI) in one Check runner;
# its last line is "N passed, N failed".
test: build
	@$(BUILD)/tests/inferd-tests

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

test-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		CK_FORK=no $(ASAN_BUILD)/tests/inferd-tests

# Unit suites under valgrind (PCRE2's JIT off: memcheck cannot see into JIT code).
test-valgrind: build
	@INFERD_NO_JIT=1 CK_FORK=no valgrind --error-exitcode=9 --leak-check=full -q \
		$(BUILD)/tests/inferd-tests nstr normalize pretokenize models postprocess decode tokenizer \
		loader pipelines config metrics

# The daemon on the bundled spam classifier (config/inferd.yaml, port 8080), in the
# foreground until Ctrl-C (SIGINT drains and exits 0). CONFIG=FILE serves another config.
CONFIG ?= config/inferd.yaml
run: build
	@echo "inferd: try  curl -s localhost:8080/models/spam -d '{\"inputs\": \"WIN a FREE iPhone now!!!\"}'"
	@exec $(BUILD)/inferd serve --config $(CONFIG)

bench: build
	@sh bench/run_tokenizer.sh $(BUILD)

# The daemon under load (spam classifier, batching on/off, 1/16/64 connections, soak).
bench-load: build
	@bash bench/run_load.sh $(BUILD)

# Text generation next to PyTorch eager (bench/run_generate.sh): random ~124M-parameter GPT-2
# and LLaMA decoders; prefill, time to first token, decode at 1 and 16 streams, interleaved rounds.
.PHONY: bench-generate
bench-generate: build
	@sh bench/run_generate.sh $(BUILD)

# The deployment files (scripts/check-deploy.sh): Kubernetes manifests against the API schemas
# (npm validators installed once into /var/cache/inferd-ci), the ConfigMap's config on the
# daemon, the systemd unit, and the Dockerfile built and run in Debian 12 chroots (as root,
# about a minute; SKIP_DOCKER=1 leaves it out). Ends with "deploy: N passed, N failed".
# libFuzzer harnesses (tests/fuzz) with clang and ASan+UBSan in $(FUZZ_BUILD), each run
# FUZZ_SECONDS on a copy of its corpus; installs clang first when missing (scripts/fuzz-deps.sh).
# Fails naming the reproducer on any crash, leak or timeout. FUZZERS="tokenizer ..." runs some.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS ?=
.PHONY: fuzz
fuzz:
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZERS)

.PHONY: test-deploy
test-deploy: build
	@bash scripts/check-deploy.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
