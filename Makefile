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

# Until the daemon exists: the CLI on the bundled models (bert-base-uncased tokenizer,
# the real spam classifier from tests/data).
DEMO = $(BUILD)/demo
run: build
	@mkdir -p $(DEMO) && tar -xJf tests/data/tokenizers.tar.xz -C $(DEMO) tokenizers/bert-uncased
	@[ -d $(DEMO)/spam-bert-tiny ] || tar -xJf tests/data/spam-bert-tiny.tar.xz -C $(DEMO)
	@echo "\$$ echo '{\"text\": \"Hello world!\"}' | build/inferd tokenize --tokenizer $(DEMO)/tokenizers/bert-uncased"
	@printf '%s\n' '{"text": "Hello world!"}' \
		| $(BUILD)/inferd tokenize --tokenizer $(DEMO)/tokenizers/bert-uncased
	@echo "\$$ build/inferd run --model $(DEMO)/spam-bert-tiny --task text-classification"
	@printf '%s\n' \
		'{"inputs": "WIN a FREE iPhone now!!! Click here to claim your prize"}' \
		'{"inputs": "Re: meeting tomorrow\nHi Bob, can we move our call to 3pm? Thanks, Alice"}' \
		| $(BUILD)/inferd run --model $(DEMO)/spam-bert-tiny --task text-classification

bench: build
	@sh bench/run_tokenizer.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
