"""The shared kernel: types and tables every layer uses (status codes, signatures, dtypes, protos,
naming, version policy, the routing-table contract, defaults). Imports nothing of tfsgate above it.
"""
