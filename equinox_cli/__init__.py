"""Equinox: holistic fair scheduling for multi-tenant LLM serving.

Importing this package is cheap: it never imports vllm, torch, typer or rich.
"""

__version__ = "0.1.0"
