#!/bin/sh
# check-layers: fails when a layer rule of docs/ARCHITECTURE.md is broken (run by make test).
#   1. engine/ includes no header of server/ or config/, nor libmicrohttpd's or libyaml's,
#      and its library links neither (it knows nothing of HTTP, YAML or the daemon);
#   2. config/ includes no header of server/ nor libmicrohttpd's (plain data for the daemon);
#   3. server/'s generation path (gen_sched, gen_model, api_gen, the generating dialects, the
#      generation CLI) reaches the engine through generate/generator.h only: no model, op,
#      tokenizer or chat template header;
#   4. config/meson.build links nothing from engine/ (no engine_dep) and config/ includes no
#      engine header (it shares only common/'s err.h with the other layers).
# Issue 13 adds the rules the tree does not keep yet: server/ and config/ include no engine
# header but the facade engine.h, and engine/ parses no API dialect.
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

forbidden="decoder.h t5.h encoder.h weights.h dnnl.h tokenizer.h template.h"
# shellcheck disable=SC2046
check "server/'s generation path" $(git ls-files 'server/gen_*' 'server/api_gen.*' \
    'server/api_tgi.c' 'server/api_openai_gen.c' 'server/cli_generate.c')

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

[ "$bad" -eq 0 ] && echo "check-layers: engine/, config/ and server/'s generation path keep to their layers"
exit "$bad"
