"""The hostile-input sweep's parts (tools/hostile_sweep.py runs them)."""
