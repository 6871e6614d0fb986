"""Engines that run a workload under a policy: the simulator (sim/), later HTTP and vLLM."""
