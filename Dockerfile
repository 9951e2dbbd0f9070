# inferd as a container: the daemon serving the bundled spam classifier on port 8080.
#
#   docker build -t inferd .
#   docker run --rm -p 8080:8080 --stop-timeout 40 inferd
#   curl -s localhost:8080/models/spam -d '{"inputs": "WIN a FREE iPhone now!!!"}'
#
# Paths inside the image (mount over them to serve other models or another config):
#   /usr/local/bin/inferd        the daemon
#   /etc/inferd/inferd.yaml      the config (config/inferd.yaml with model paths under /models)
#   /models/spam-bert-tiny       the default model; mount a volume at /models for others
# It runs as uid/gid 10001 (user "inferd"), writes nothing to disk (a read-only root file
# system is fine) and is PID 1: SIGTERM (docker stop) drains, answering every request in
# flight for up to request_timeout_ms + 5 s, so give `docker stop` that long (--stop-timeout;
# Docker's default of 10 s cuts a long drain short). SIGHUP (docker kill -s HUP) reloads.
#
# scripts/docker-chroot-test.sh runs these same steps in a debootstrapped Debian 12 chroot
# (make test-deploy): it understands the instructions used here (FROM, RUN, COPY [--from]
# [--chown], WORKDIR, ENV, USER, ARG with a default, and the metadata lines) and nothing more.

# ---- build stage: compilers and -dev packages, then the release binary (tests off) ----
FROM debian:12-slim AS build
# the build half of scripts/deps.sh's PKGS (no Check or prometheus: tests are off; libcurl and
# OpenSSL's libcrypto for the Hub client, libzip for pytorch_model.bin checkpoints)
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev make meson ninja-build pkg-config \
        libjansson-dev libutf8proc-dev libpcre2-dev libyaml-dev libmicrohttpd-dev libdnnl-dev \
        libzip-dev libcurl4-openssl-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
# the image's config: config/inferd.yaml with its model paths moved from ../models to /models
RUN meson setup /build -Dtests=false -Dbuildtype=release \
    && ninja -C /build inferd \
    && mkdir -p /out \
    && sed -e 's#^\( *path: *\)\.\./models/#\1/models/#' config/inferd.yaml > /out/inferd.yaml \
    && grep -q '^ *path: /models/' /out/inferd.yaml \
    && ! grep -q '^ *path: \.\.' /out/inferd.yaml

# ---- runtime stage: the binary, its shared libraries (Debian's runtime packages), the model ----
FROM debian:12-slim AS runtime
# curl serves the HEALTHCHECK (and kubectl exec debugging); libgomp1 is oneDNN's OpenMP runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libjansson4 libutf8proc2 libpcre2-8-0 libyaml-0-2 libmicrohttpd12 libdnnl2 libgomp1 libzip4 \
        libcurl4 libssl3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 inferd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin inferd
COPY --from=build /build/inferd /usr/local/bin/inferd
COPY --from=build /out/inferd.yaml /etc/inferd/inferd.yaml
COPY models/spam-bert-tiny /models/spam-bert-tiny
# fail the build now if a shared library is missing, not at the first start
RUN if ldd /usr/local/bin/inferd | grep 'not found'; then exit 1; fi \
    && /usr/local/bin/inferd serve --help > /dev/null
USER 10001:10001
WORKDIR /
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/inferd"]
CMD ["serve", "--config", "/etc/inferd/inferd.yaml"]
