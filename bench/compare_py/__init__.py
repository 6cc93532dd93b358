"""bench/compare's Python side: the driver's parts and the PyTorch and JAX reference workers."""
