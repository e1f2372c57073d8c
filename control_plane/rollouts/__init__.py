"""Guarded rollouts: move traffic to a candidate step by step, roll back on a breach."""
