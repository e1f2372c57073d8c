# tfsgate as a drop-in for the tensorflow/serving image: same ports (8500 gRPC, 8501 REST), same
# environment (MODEL_NAME, MODEL_BASE_PATH=/models, GRPC_PORT, PORT), extra arguments appended to
# the server command, and the embedded tritonserver from the nvidia-pytriton wheel so it serves alone.
#
#   docker build -t tfsgate .
#   docker run -p 8500:8500 -p 8501:8501 \
#     -v "$PWD/models/half_plus_two:/models/half_plus_two" -e MODEL_NAME=half_plus_two tfsgate
#
# BASE is any Debian-based image: the official python:3.11-slim-bookworm by default, or a bare
# Debian bookworm (its python3.11 is installed then). The PIP_* build arguments let a build reach
# the package index the way the build host does (see docs/deploy.md); none of them is kept in the
# image.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS python
ENV VIRTUAL_ENV=/opt/tfsgate PATH=/opt/tfsgate/bin:$PATH
# The python backend stub links libpython3.11.so: the official image has it in /usr/local/lib,
# Debian in the libpython3.11 package.
RUN set -eu; \
    if ! command -v python3.11 >/dev/null 2>&1; then \
        apt-get update; \
        apt-get install -y --no-install-recommends python3.11 python3.11-venv libpython3.11; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb; \
    fi; \
    python3.11 -m venv "$VIRTUAL_ENV"

# The dependency list alone, so the large dependency layer below is rebuilt only when it changes
# (not on every edit of pyproject.toml's tool settings).
FROM python AS requirements
COPY pyproject.toml /src/pyproject.toml
RUN python -c 'import tomllib, pathlib; \
    deps = tomllib.loads(pathlib.Path("/src/pyproject.toml").read_text())["project"]["dependencies"]; \
    pathlib.Path("/requirements.txt").write_text("\n".join(deps) + "\n")'

# tfsgate itself as a wheel (no dependencies): the final image gets the wheel, not the sources.
FROM python AS wheel
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT=120
COPY . /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src

FROM python
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT=120
COPY --from=requirements /requirements.txt /opt/tfsgate/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /opt/tfsgate/requirements.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels

COPY docker/tf_serving_entrypoint.sh /usr/bin/tf_serving_entrypoint.sh
COPY docker/tritonserver.sh /usr/local/bin/tritonserver
# TF Serving's image: ports and model location as environment, one model named by MODEL_NAME.
ENV GRPC_PORT=8500 PORT=8501 MODEL_BASE_PATH=/models MODEL_NAME=model \
    TFSGATE_HOME=/var/lib/tfsgate TFSGATE_MODEL_REPOSITORY=/var/lib/tfsgate/model_repository \
    TF_CPP_MIN_LOG_LEVEL=2
RUN mkdir -p "$MODEL_BASE_PATH" "$TFSGATE_MODEL_REPOSITORY"
WORKDIR /var/lib/tfsgate
# 8502 is tfsgate's admin API (loopback-only unless TFSGATE_ADMIN_TOKEN is set).
EXPOSE 8500 8501 8502
ENTRYPOINT ["/usr/bin/tf_serving_entrypoint.sh"]
