# inferd front door: make deps | build | test | test-asan | run | bench | format
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?=

.PHONY: all deps build test test-asan test-valgrind run bench format format-check clean

all: build

deps:
	@sh scripts/deps.sh

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
		loader pipelines

# Until the daemon exists: the tokenize CLI on the bundled bert-base-uncased tokenizer.
run: build
	@mkdir -p $(BUILD)/demo && tar -xJf tests/data/tokenizers.tar.xz -C $(BUILD)/demo tokenizers/bert-uncased
	@echo "\$$ echo '{\"text\": \"Hello world!\"}' | build/inferd tokenize --tokenizer $(BUILD)/demo/tokenizers/bert-uncased"
	@printf '%s\n' '{"text": "Hello world!"}' '{"text": "Who founded Apple?", "pair": "Apple Inc. was founded by Steve Jobs."}' \
		| $(BUILD)/inferd tokenize --tokenizer $(BUILD)/demo/tokenizers/bert-uncased
	@printf '%s\n' '{"ids": [101, 7592, 2088, 999, 102]}' \
		| $(BUILD)/inferd detokenize --tokenizer $(BUILD)/demo/tokenizers/bert-uncased

bench: build
	@sh bench/run_tokenizer.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
