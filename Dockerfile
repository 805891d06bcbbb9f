# syntax=docker/dockerfile:1
# The service's image: `partners serve` by default, `partners migrate` / `partners keys ...` as
# one-off commands. Build: `docker build -t partners .` (BuildKit, for the cache mounts).
# CI (.ci/run) lints this file with hadolint and builds the same release binary on the host.

FROM rust:1-bookworm AS build
# libpq for Diesel's postgres backend (the build links it; the runtime stage has libpq5).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The commit built, for `partners_build_info` (.git is not in the build context).
ARG PARTNERS_GIT_SHA=unknown
ENV PARTNERS_GIT_SHA=${PARTNERS_GIT_SHA}
COPY . .
# The cargo registry and target/ are cache mounts (kept between builds, not in the image), so the
# binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p partners \
    && cp target/release/partners /usr/local/bin/partners

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 partners \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin partners
COPY --from=build /usr/local/bin/partners /usr/local/bin/partners
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
# Listen on every interface of the container (the binary's defaults are loopback only).
# DATABASE_URL and keys are never baked in: pass them at run time.
ENV PARTNERS_GRPC_ADDR=0.0.0.0:50051 \
    PARTNERS_HTTP_ADDR=0.0.0.0:8080 \
    PARTNERS_METRICS_ADDR=0.0.0.0:9464
# gRPC, REST gateway (/healthz, /readyz, /api/v1), Prometheus metrics (/metrics).
EXPOSE 50051 8080 9464
ENTRYPOINT ["partners"]
CMD ["serve"]
