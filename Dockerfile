# syntax=docker/dockerfile:1
#
# thumbgen container image: a Rust build stage and a small Debian runtime.
#
#   docker build -t thumbgen .
#   docker run -d --name thumbgen -p 8501:8501 \
#     -v "$PWD/produtos:/data/produtos" -v "$PWD/backgrounds:/data/backgrounds" \
#     -v "$PWD/thumbnails-prontas:/data/thumbnails-prontas" -v "$PWD/logs:/data/logs" thumbgen
#
# The runtime is debian:bookworm-slim rather than distroless/cc: the binary needs only glibc,
# libstdc++ (for onnxruntime) and the CA certificates (for the optional Gradio engine over HTTPS), which both provide, but
# the Debian image also has a shell, so `docker exec` can run scripts/diagnose.sh, ls and tail
# when something goes wrong, for about 25 MB more. Builder and runtime are the same Debian
# release, so the glibc the binary was linked against is the one it runs with.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# --- Build ------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /build

# build.rs fetches onnxruntime's library from its PyPI wheel with pip (pinned version and SHA-256).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, against a placeholder crate: this layer is rebuilt only when Cargo.toml,
# Cargo.lock or build.rs change, not on every source edit (the onnxruntime wheel is fetched here).
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/thumbgen* target/release/.fingerprint/thumbgen-* \
       target/release/deps/thumbgen-* target/release/deps/libthumbgen-*

# The real sources (the model is compiled into the binary). The placeholder's artefacts are
# gone and the sources are touched, so cargo can never mistake the placeholder for them.
COPY models ./models
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/thumbgen /out/thumbgen \
    && install -D -m 0644 -t /out/lib target/release/libonnxruntime.so.1.32.0 \
    && install -D -m 0644 -t /out/doc target/release/LICENSE-onnxruntime-MIT.txt \
       target/release/onnxruntime-ThirdPartyNotices.txt \
    && /out/thumbgen --version

# --- Runtime ----------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates follows the Debian release (security updates), so it is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 thumbgen \
    && useradd --uid 1000 --gid 1000 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin thumbgen \
    && mkdir -p /data/produtos /data/backgrounds /data/thumbnails-prontas /data/rejeitados \
       /data/logs /data/.thumbgen \
    && chown -R 1000:1000 /data

COPY --from=builder /out/thumbgen /usr/local/bin/thumbgen
# The onnxruntime library the embedded engine loads (found in ../lib/thumbgen/ from the binary),
# with its licence and third-party notices. It needs libstdc++, which the slim image has (apt uses it).
COPY --from=builder /out/lib/ /usr/local/lib/thumbgen/
COPY --from=builder /out/doc/ /usr/share/doc/thumbgen/
COPY README.md models/LICENSE-U2NET-Apache-2.0.txt models/LICENSE-rembg-MIT.txt /usr/share/doc/thumbgen/

# Listen on all interfaces inside the container (the default is loopback only).
ENV BASE_PATH=/data \
    HTTP_ADDR=0.0.0.0:8501

WORKDIR /data
# Named volumes start with the image's (uid 1000) ownership; bind-mounted host folders must be
# writable by uid 1000.
VOLUME ["/data/produtos", "/data/backgrounds", "/data/thumbnails-prontas", "/data/rejeitados", "/data/logs", "/data/.thumbgen"]
EXPOSE 8501

USER 1000:1000

# `thumbgen health` asks /health on HTTP_ADDR/PORT: exit 0 when healthy or degraded. Loading the
# model and the first scan take a few seconds; a large catalog's first scan takes longer.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["thumbgen", "health"]

# SIGTERM: finish jobs in flight within SHUTDOWN_TIMEOUT (30 s). Give `docker stop -t 45`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["thumbgen"]
CMD ["run"]
