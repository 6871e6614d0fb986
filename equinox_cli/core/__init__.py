"""Frozen value types, Protocols and errors shared by every layer."""
