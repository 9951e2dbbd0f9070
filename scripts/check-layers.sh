#!/bin/sh
# check-layers: fails when a layer rule of docs/ARCHITECTURE.md is broken (run by make test).
#   1. engine/ includes no header of server/ or config/, nor libmicrohttpd's or libyaml's,
#      and its library links neither (it knows nothing of HTTP, YAML or the daemon);
#   2. config/ includes no header of server/ nor libmicrohttpd's (plain data for the daemon);
#   3. server/ reaches the engine through its one door: no file of server/ includes a header of
#      engine/ but engine.h (the offline subcommands in cli/ may reach further, as tests and
#      benchmarks do), and the facade's public headers (engine.h and what it includes, listed in
#      $facade) include nothing of the engine beyond each other;
#   4. config/meson.build links nothing from engine/ (no engine_dep) and config/ includes no
#      engine header (it shares only common/'s err.h and clock.h with the other layers);
#   5. engine/ parses no API dialect (they are server/params_*.c): no source of engine/ names a
#      dialect parser or enum (parse_tgi, parse_openai, gen_dialect, GEN_DIALECT_) nor holds a
#      request key only a dialect reads as a string literal ("best_of", "stream_options",
#      "max_completion_tokens", ...), and only the files listed in json_ok include jansson:
#      those that read model files (config.json, tokenizer.json, safetensors headers,
#      generation_config.json), the chat template's values and the encoder pipelines.
#   6. hub/ (the Hub client) includes nothing of engine/, server/ or config/, nor libmicrohttpd's
#      or libyaml's, and links none of them; engine/ and config/ include nothing of hub/; and
#      outside hub/ only hub.h is included (by server/'s registry and cli/).
set -eu
cd "$(dirname "$0")/.."
bad=0
headers_of() { (cd "$1" && ls ./*.h 2>/dev/null | sed 's|^\./||'); }
server_h=$(headers_of server)
config_h=$(headers_of config)
# every header under engine/, by base name ("runner.h")
engine_h=$(cd engine && git ls-files '*.h' | sed 's|.*/||')

# includes "NAME" or <NAME> of a file, one a line
includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' "$1"; }

check() { # LAYER FILES... : refuses the headers named in $forbidden
    layer=$1
    shift
    for f in "$@"; do
        for inc in $(includes "$f"); do
            base=${inc##*/}
            for h in $forbidden; do
                if [ "$base" = "$h" ] || [ "$inc" = "$h" ]; then
                    echo "check-layers: $f includes $inc: $layer must not"
                    bad=1
                fi
            done
        done
    done
}

forbidden="$server_h $config_h microhttpd.h yaml.h"
# shellcheck disable=SC2046
check engine/ $(git ls-files 'engine/*.c' 'engine/*.h')
forbidden="$server_h microhttpd.h"
forbidden="$forbidden $engine_h"
# shellcheck disable=SC2046
check config/ $(git ls-files 'config/*.c' 'config/*.h')

# 3. server/ through engine.h only; the facade's headers include only each other
forbidden=$(echo "$engine_h" | grep -vx 'engine.h')
# shellcheck disable=SC2046
check server/ $(git ls-files 'server/*.c' 'server/*.h')
facade="engine.h dtype.h generate/generator.h generate/grammar.h generate/params.h generate/sampling.h
generate/stop.h pipelines/runner.h pipelines/task_table.h tokenizer/tokenizer.h tokenizer/nstr.h"
for h in $facade; do
    for inc in $(includes "engine/$h"); do
        base=${inc##*/}
        echo "$engine_h" | grep -qx "$base" || continue # a system, jansson or common/ header
        ok=0
        for f in $facade; do [ "${f##*/}" = "$base" ] && ok=1; done
        if [ "$ok" = 0 ]; then
            echo "check-layers: engine/$h includes $inc: the facade's headers include only each other"
            bad=1
        fi
    done
done

for dep in mhd_dep yaml_dep; do
    if grep -q "$dep" engine/meson.build; then
        echo "check-layers: engine/meson.build links $dep: the engine must not"
        bad=1
    fi
done
if grep -q "mhd_dep" config/meson.build; then
    echo "check-layers: config/meson.build links libmicrohttpd: config must not"
    bad=1
fi
if grep -q "engine_dep\|engine_lib" config/meson.build; then
    echo "check-layers: config/meson.build links the engine: config must not"
    bad=1
fi

# 3. no API dialect in engine/
dialect_words="parse_tgi parse_openai gen_dialect GEN_DIALECT_"
dialect_keys="best_of stream_options include_usage max_completion_tokens max_tokens top_logprobs
top_n_tokens stop_token_ids include_stop_str_in_output decoder_input_details response_format
logit_bias tool_choice"
# engine files that may include jansson: model files, chat template values, encoder pipelines
# (whose Hugging Face parameters issue 13 moves out next)
json_ok="engine/loader/hf_config.c engine/loader/hf_config_read.h engine/loader/safetensors.c
engine/loader/torch_bin.c engine/models/q4_checkpoint.c
engine/tokenizer/tok.h
engine/tokenizer/slow_int.h engine/tokenizer/slow_spm.c
engine/tokenizer/tokenizer.c engine/tokenizer/slow.c engine/models/t5.c engine/generate/gen_config.c
engine/generate/gen_model.c
engine/chat/tpl.h engine/chat/template.h engine/pipelines/pipeline.h engine/pipelines/runner.h"
engine_src=$(git ls-files 'engine/*.c' 'engine/*.h')
for w in $dialect_words; do
    # shellcheck disable=SC2086
    for f in $(grep -l -- "$w" $engine_src || true); do
        echo "check-layers: $f names $w: engine/ parses no API dialect (server/params_*.c)"
        bad=1
    done
done
for k in $dialect_keys; do
    # shellcheck disable=SC2086
    for f in $(grep -l -- "\"$k\"" $engine_src || true); do
        echo "check-layers: $f holds the request key \"$k\": engine/ parses no API dialect"
        bad=1
    done
done
json_allowed() {
    for ok in $json_ok; do [ "$ok" = "$1" ] && return 0; done
    return 1
}
for f in $engine_src; do
    if includes "$f" | grep -qx 'jansson.h' && ! json_allowed "$f"; then
        echo "check-layers: $f includes jansson.h: only json_ok's files may"
        bad=1
    fi
done

# 6. hub/ between the layers
hub_h=$(headers_of hub)
forbidden="$server_h $config_h $engine_h microhttpd.h yaml.h"
# shellcheck disable=SC2046
check hub/ $(git ls-files 'hub/*.c' 'hub/*.h')
forbidden="$hub_h"
# shellcheck disable=SC2046
check engine/ $(git ls-files 'engine/*.c' 'engine/*.h')
# shellcheck disable=SC2046
check config/ $(git ls-files 'config/*.c' 'config/*.h')
forbidden=$(echo "$hub_h" | grep -vx 'hub.h')
# shellcheck disable=SC2046
check "server/ and cli/" $(git ls-files 'server/*.c' 'server/*.h' 'cli/*.c' 'cli/*.h')
for dep in engine_dep engine_lib config_dep mhd_dep yaml_dep server_dep; do
    if grep -q "$dep" hub/meson.build; then
        echo "check-layers: hub/meson.build links $dep: the Hub client must not"
        bad=1
    fi
done

[ "$bad" -eq 0 ] && echo "check-layers: engine/, config/, hub/ and server/ keep to their layers"
exit "$bad"
