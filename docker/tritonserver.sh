#!/bin/sh
# The nvidia-pytriton wheel's tritonserver, for a Triton container run from tfsgate's image (the
# CPU compose variant). Triton wants a backend directory holding the python backend library, its
# utils module and the stub built for this Python; the wheel keeps stubs per Python version, so
# the directory is assembled from links here (as tfsgate's embedded Triton does). The stub takes
# its packages from the first python3 on PATH: the image's venv, which has TensorFlow.
set -eu
root="$(python3 -c 'import importlib.util, pathlib; spec = importlib.util.find_spec("pytriton"); print(pathlib.Path(next(iter(spec.submodule_search_locations))) / "tritonserver")')"
version="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
backends="${TRITON_BACKEND_DIRECTORY:-/var/lib/tfsgate/triton/backends}"
mkdir -p "$backends/python"
ln -sf "$root/backends/python/libtriton_python.so" "$backends/python/"
ln -sf "$root/backends/python/triton_python_backend_utils.py" "$backends/python/"
ln -sf "$root/python_backend_stubs/$version/triton_python_backend_stub" "$backends/python/"
exec "$root/bin/tritonserver" --backend-directory="$backends" "$@"
