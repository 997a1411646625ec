# The KITT image: `kitt` (and `kitt web`, `kitt-agent`) with every bundled plugin but the
# quality benchmarks. Engines run as sibling containers through the mounted Docker socket;
# results and the store go to the folder mounted at /app/kitt-results (docs/deployment.md).
#
#   docker build -t kitt .
#   docker build --build-arg BASE_IMAGE=python:3.11-slim -t kitt .
#   docker build --build-arg KITT_EXTRA=kitt-bench-quality -t kitt .   # lm-eval, torch: GBs
#
# KITT itself is installed from wheels built here from this tree. Its dependencies come
# from the package index, or, when the context holds a wheelhouse/ folder (`nox -s
# wheelhouse`), from that alone: then the build needs no network beyond the base image.
# Works with the classic builder and BuildKit alike.

ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS wheels
ARG KITT_EXTRA=""
WORKDIR /src
COPY . .
RUN set -eu; \
    index=""; \
    if ls wheelhouse/*.whl >/dev/null 2>&1; then index="--no-index --find-links wheelhouse"; fi; \
    python3 -m venv /build; \
    /build/bin/python -m pip wheel --quiet $index --wheel-dir /wheels \
        "./kitt-core[docker,postgres,report,tiny]" ./kitt-engine-llamacpp \
        ./kitt-engine-vllm ./kitt-engine-tgi ./kitt-engine-ollama ./kitt-bench-perf \
        ./kitt-web ./kitt-agent $(for dist in $KITT_EXTRA; do echo "./$dist"; done)

FROM ${BASE_IMAGE}
ARG KITT_EXTRA=""
COPY --from=wheels /wheels /tmp/wheels
RUN set -eu; \
    python3 -m venv /opt/kitt; \
    /opt/kitt/bin/python -m pip install --quiet --no-index --find-links /tmp/wheels \
        "kitt-core[docker,postgres,report,tiny]" kitt-engine-llamacpp kitt-engine-vllm \
        kitt-engine-tgi kitt-engine-ollama kitt-bench-perf kitt-web kitt-agent $KITT_EXTRA; \
    rm -rf /tmp/wheels /root/.cache
# `kitt engines setup` builds KITT's own engine images from these contexts.
COPY docker/llama-cpp-spark /opt/kitt/docker/llama-cpp-spark
COPY docker/llama-cpp-arm64 /opt/kitt/docker/llama-cpp-arm64
COPY docker/entrypoint.sh /usr/local/bin/kitt-entrypoint

# KITT_MODE: engines launch as sibling containers unless a command asks for --mode native.
ENV PATH=/opt/kitt/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KITT_HOME=/app/kitt-results \
    KITT_MODE=docker \
    KITT_DOCKER_DIR=/opt/kitt/docker \
    MPLBACKEND=Agg
WORKDIR /app
EXPOSE 8080
ENTRYPOINT ["kitt-entrypoint"]
CMD ["--help"]
