"""Traces and workloads: canonical schema, format readers, tenant assignment, synthetic suites."""
