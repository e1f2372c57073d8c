#!/bin/sh
# TF Serving's image entrypoint, same name and arguments: the server with the image's ports and
# ${MODEL_BASE_PATH}/${MODEL_NAME}, then whatever `docker run IMAGE ...` appends. Unlike TF
# Serving's script, exec: the server is PID 1 and gets `docker stop`'s SIGTERM itself.
exec tfsgate serve --port="${GRPC_PORT}" --rest_api_port="${PORT}" \
    --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
