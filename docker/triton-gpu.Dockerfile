# Triton for GPU hosts: NVIDIA's official -py3 image plus TensorFlow (and LiteRT) for the
# python-backend runners tfsgate writes for signatures that do not convert to ONNX (Triton removed
# its TensorFlow backend after 25.02). ONNX signatures run on the image's onnxruntime backend with
# TensorRT.
# 24.10 is the release whose server (2.51.0) the nvidia-pytriton wheel embeds, so the CPU and GPU
# topologies run the same Triton.
ARG TRITON_BASE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_BASE}
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
# numpy 2 breaks Triton's python backend (every infer: "output tensor shape does not match").
# ai-edge-litert: LiteRT for the TFLite runner (--prefer_tflite_model). Op libraries named by
# --custom_op_libraries must be installed here too: the TensorFlow worker runs in this container.
RUN pip install --no-cache-dir --disable-pip-version-check "tensorflow>=2.21,<2.22" "numpy<2" \
    "ai-edge-litert>=2.3,<3"
