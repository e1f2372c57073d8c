"""Code that runs inside Triton (python-backend models and their workers).

The converter copies these files into the model repository; each is self-contained (stdlib, numpy
and the engine it drives), never importing tfsgate, gateway or control_plane: a test checks it.
"""
