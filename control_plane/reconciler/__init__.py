"""The reconciler: drive Triton until it serves what the catalog and TF Serving's sources ask for.

- ``reconcile.py``: one pass (the ``Reconciler``), per model: desired versions, conversion,
  converge, labels; then publish.
- ``desired.py``: the desired state (served models, wanted versions, catalog registration, labels).
- ``converge.py``: load, swap, drain and retire on Triton, preserving availability.
- ``publish.py``: the routing table built from the catalog and handed to the gateway.
- ``admin_import.py``: versions imported through the admin API.
- ``retry.py``: failed passes retried with backoff.
"""

from control_plane.reconciler.reconcile import Reconciler
from control_plane.reconciler.retry import retry_failed_passes
from control_plane.reconciler.settings import ReconcilerSettings

__all__ = ["Reconciler", "ReconcilerSettings", "retry_failed_passes"]
