"""The vLLM plug-in: Equinox policies in place of vLLM's waiting queue.

queue.py and charging.py never import vllm (they are duck-typed against vLLM's Request and
SchedulerOutput), so they are tested without it; the Scheduler subclass that vLLM loads through
`scheduler_cls` is the only module that imports vllm, and only when vLLM imports it.
"""
