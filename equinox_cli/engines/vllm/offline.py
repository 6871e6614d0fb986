"""Drive a vLLM scheduler without a model: for the plug-in's tests and the scheduler-overhead benchmark.

`build_scheduler` makes a real vLLM `Scheduler` (or a subclass: the plug-in) from a model folder's
config, with a KV cache of `num_blocks` blocks and no worker; `fake_step` runs one real schedule()
and feeds update_from_output() a model output that samples one token for every request whose
prompt is fully computed. Nothing runs a model, so a step costs only the scheduler's own time.
Imports vllm (and torch): only tests and benchmarks import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager

SAMPLED_TOKEN = 7


@dataclass(frozen=True, slots=True)
class SchedulerShape:
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 512
    max_model_len: int = 1024
    num_blocks: int = 256
    block_size: int = 16


def build_scheduler(cls: type[Scheduler], model: Path, shape: SchedulerShape = SchedulerShape()) -> Any:
    """A scheduler of class `cls` over a fake KV cache (prefix caching off: prompts have no hashes)."""
    model_config = ModelConfig(
        model=str(model), max_model_len=shape.max_model_len, dtype="float32", skip_tokenizer_init=True
    )
    scheduler_config = SchedulerConfig(
        max_num_seqs=shape.max_num_seqs,
        max_num_batched_tokens=shape.max_num_batched_tokens,
        max_model_len=shape.max_model_len,
        is_encoder_decoder=False,
    )
    cache_config = CacheConfig(block_size=shape.block_size, cache_dtype="auto", enable_prefix_caching=False)
    cache_config.num_gpu_blocks = shape.num_blocks
    vllm_config = VllmConfig(
        model_config=model_config, scheduler_config=scheduler_config, cache_config=cache_config
    )
    spec = FullAttentionSpec(block_size=shape.block_size, num_kv_heads=1, head_size=64, dtype=torch.float32)
    kv_config = KVCacheConfig(
        num_blocks=shape.num_blocks,
        kv_cache_tensors=[],
        kv_cache_groups=[KVCacheGroupSpec(["layer.0"], spec)],
    )
    return cls(
        vllm_config=vllm_config,
        kv_cache_config=kv_config,
        structured_output_manager=StructuredOutputManager(vllm_config),
        block_size=shape.block_size,
    )


def make_request(
    request_id: str, client: str | None, prompt_tokens: int, output_tokens: int, arrival_s: float = 0.0
) -> Request:
    """A request of exact prompt and output length; `client` goes where `vllm_xargs` puts it."""
    extra = {"equinox_client": client} if client is not None else None
    params = SamplingParams(
        max_tokens=output_tokens, min_tokens=output_tokens, ignore_eos=True, extra_args=extra
    )
    return Request(
        request_id=request_id,
        prompt_token_ids=[SAMPLED_TOKEN + 1] * prompt_tokens,
        sampling_params=params,
        pooling_params=None,
        arrival_time=arrival_s,
    )


def fake_output(scheduler: Any, scheduler_output: Any) -> ModelRunnerOutput:
    """What a model would return: one token for each request whose prompt is now fully computed."""
    ids = list(scheduler_output.num_scheduled_tokens)
    sampled = []
    for rid in ids:
        request = scheduler.requests[rid]
        done = request.num_computed_tokens >= request.num_prompt_tokens
        sampled.append([SAMPLED_TOKEN] if done else [])
    return ModelRunnerOutput(
        req_ids=ids, req_id_to_index={rid: i for i, rid in enumerate(ids)}, sampled_token_ids=sampled
    )


def fake_step(scheduler: Any) -> Any:
    """One schedule() and its update_from_output(); returns the scheduler output."""
    scheduler_output = scheduler.schedule()
    scheduler.update_from_output(scheduler_output, fake_output(scheduler, scheduler_output))
    return scheduler_output
