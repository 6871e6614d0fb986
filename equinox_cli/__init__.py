"""Equinox: holistic fair scheduling for multi-tenant LLM serving.

Importing this package is cheap: it never imports vllm, torch, typer or rich.
"""

from equinox_cli import native

__version__ = "0.1.0"
# the simulator's compiled step loop, only when built from the sources on disk (native.py)
NATIVE = native.use_current()
