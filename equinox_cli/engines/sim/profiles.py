"""Hardware profiles: the step-time model's coefficients and the engine defaults of one setup.

Step time (seconds) of a batch with P prefill tokens, n decoding sequences attending over C context
tokens, from A distinct tenants:   t = c0 + c_p·P + c_d·n + c_kv·(C + P) + c_a·A
c0 is reading the weights once per step plus launch overhead (memory-bound); c_p the compute per
prefill token (2·params FLOPs at ~50–55 % of peak tensor throughput); c_d the marginal cost of a
decode sequence; c_kv reading one context token's K and V (kv_bytes_per_token / bandwidth); c_a
(S-LoRA only, else 0) the cost of each distinct LoRA adapter in the step, every tenant being served
by its own adapter as in VTC's experiments (S-LoRA's batched adapter kernels work per adapter).

Modelled GPU utilisation of a step is its roofline fraction: the larger of achieved FLOPs / peak
FLOPs and bytes moved / peak bandwidth, where FLOPs = 2·params·(P + n) and
bytes = weight_bytes + kv_bytes_per_token·(C + P). It says how close the step runs to the
hardware's binding limit; an idle engine has utilisation 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from equinox_cli.core.errors import unknown_name

ADMISSION_RULES = ("vllm", "slora", "reserve-max")  # one module each in admission/


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    sources: str  # the public figures the coefficients derive from
    c0_s: float
    c_p_s: float
    c_d_s: float
    c_kv_s: float
    params: float
    weight_bytes: float
    kv_bytes_per_token: float
    peak_flops: float
    peak_bytes_s: float
    kv_capacity_tokens: int
    # the model's context (vLLM's max_model_len): a prompt that leaves no room for one output token
    # is refused, and max_tokens is cut to the room left, as vLLM's API server does (it clamps, never
    # refuses, a max_tokens too large; S-LoRA would refuse it: one rule for every admission here)
    max_model_len: int = 4096
    block_size: int = 16
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    # vLLM's long_prefill_token_threshold (vllm admission, chunked prefill): while more than one
    # request is running or waiting, no request computes more prompt tokens than this in a step,
    # so that a long prompt does not take the whole token budget from short ones (0: off, vLLM's default)
    long_prefill_tokens: int = 0
    admission: str = "vllm"  # one of ADMISSION_RULES
    admit_every_steps: int = 10  # slora: decode steps before admission is retried; reserve-max: cadence
    prefill_cap_tokens: int = 3072  # slora and reserve-max: new prompt tokens per admission round
    # the engine's KV gate (vllm admission only): admit only while the running batch's predicted
    # final KV need fits the cache, predicted by the engine's own predictor (--predictor)
    kv_gate: bool = False
    gate_rule: str = "peak"  # peak: the batch's peak need over time (staggered finishes) | sum
    prefix_caching: bool = True  # vllm admission, traces with prefix hashes (kv.py)
    # measured step time / fitted step time, as quantiles (a calibrated profile has them): each
    # simulated step is scaled by one drawn at random (seeded), so that queueing sees the scatter
    step_residuals: tuple[float, ...] = ()
    step_noise: bool = True  # use step_residuals when there are any
    # the serving path's own latency, from a client's send to the engine's queue plus the stream
    # back (HTTP, API server): every request reaches the scheduler this much after its arrival. A
    # calibrated profile measures it (client-seen minus engine-seen TTFT); datasheet profiles: 0
    api_overhead_s: float = 0.0
    # c_a: step time per distinct tenant (LoRA adapter) in the step; 0: the engine serves one model
    c_adapter_s: float = 0.0

    @property
    def kv_blocks(self) -> int:
        """The KV pool in whole blocks (a partial block at the end of the capacity holds nothing)."""
        return self.kv_capacity_tokens // self.block_size

    def fits_pool(self, tokens: int) -> bool:
        """`tokens` of one sequence fit the KV pool alone, block-rounded as the engine allocates."""
        return -(-tokens // self.block_size) <= self.kv_blocks

    def step_time_scaled(self, factor: float) -> Profile:
        """This profile with every step-time coefficient times `factor` (the residuals are ratios)."""
        scaled = {k: getattr(self, k) * factor for k in ("c0_s", "c_p_s", "c_d_s", "c_kv_s")}
        return replace(self, **scaled)

    def step_time_s(self, prefill_tokens: int, decode_seqs: int, context_tokens: int) -> float:
        return (
            self.c0_s
            + self.c_p_s * prefill_tokens
            + self.c_d_s * decode_seqs
            + self.c_kv_s * (context_tokens + prefill_tokens)
        )

    def gpu_util(self, prefill_tokens: int, decode_seqs: int, context_tokens: int, t: float) -> float:
        flops = 2.0 * self.params * (prefill_tokens + decode_seqs)
        moved = self.weight_bytes + self.kv_bytes_per_token * (context_tokens + prefill_tokens)
        return min(1.0, max(flops / (t * self.peak_flops), moved / (t * self.peak_bytes_s)))


LLAMA2_7B_PARAMS = 6.74e9
LLAMA2_7B_KV = 2 * 32 * 4096 * 2  # K and V, 32 layers, hidden 4096, fp16: 524,288 B per token
LLAMA3_8B_PARAMS = 8.03e9
LLAMA3_8B_KV = 2 * 32 * 8 * 128 * 2  # GQA: 8 KV heads of 128, 32 layers, fp16: 131,072 B per token
# The fraction of the A10G datasheet's bandwidth and compute that VTC's engine (S-LoRA) achieves
# (every a10g step-time coefficient is the datasheet-derived one divided by it), fitted on VTC's
# published overload service, and the step time per distinct adapter in a step, fitted on the first
# half of VTC's published real-trace run, together (`python benchmarks/bench_slora_published.py
# fit FILE`); checked on that run's second half and on the FCFS and LCF runs (`... check`, README
# "VTC's engine, against its published runs").
A10G_EFFICIENCY = 0.855
A10G_ADAPTER_S = 0.26e-3

PROFILES: dict[str, Profile] = {
    "a10g-llama2-7b": Profile(
        name="a10g-llama2-7b",
        description="Llama-2-7B fp16 on an A10G 24 GB with VTC's engine (S-LoRA)",
        sources=(
            "Step time from the datasheet, derived as for the other profiles: A10/A10G 600 GB/s "
            "GDDR6, 125 TFLOPS fp16 tensor; Llama-2-7B 6.74e9 params (13.5 GB fp16 read per step: "
            "22.5 ms) + ~1.5 ms overhead = c0; prefill at 55 % of peak = c_p; decode's marginal "
            "compute at peak = c_d; KV 524 KB per token read at full bandwidth = c_kv; each divided "
            "by one efficiency, 0.855 (A10G_EFFICIENCY), fitted on VTC's published overload service "
            "(677 + 675 tokens/s under VTC), together with 0.26 ms per distinct adapter (tenant) in a "
            "step (A10G_ADAPTER_S), fitted on the first half of VTC's published real-trace run "
            "(benchmarks/bench_slora_published.py fit). Engine from "
            "VTC's artifact (S-LoRA): KV pool 10,000 tokens, prefill cap 3,072 tokens per round, "
            "<= 1,000 running, admission retried after 10 decode steps, future-peak rule "
            "(admission/slora.py); context 4,096 tokens (Llama-2's). Independent check: the "
            "artifact's published runs of a real 1,500-request trace under VTC, FCFS and LCF "
            "(bench_slora_published.py check; README)."
        ),
        c0_s=0.024 / A10G_EFFICIENCY,
        c_p_s=2.0e-4 / A10G_EFFICIENCY,
        c_d_s=1.1e-4 / A10G_EFFICIENCY,
        c_kv_s=LLAMA2_7B_KV / 600e9 / A10G_EFFICIENCY,
        params=LLAMA2_7B_PARAMS,
        weight_bytes=LLAMA2_7B_PARAMS * 2,
        kv_bytes_per_token=LLAMA2_7B_KV,
        peak_flops=125e12,
        peak_bytes_s=600e9,
        kv_capacity_tokens=10_000,
        block_size=1,
        max_num_seqs=1000,
        max_num_batched_tokens=3072,
        chunked_prefill=False,
        admission="slora",
        c_adapter_s=A10G_ADAPTER_S,
    ),
    "a100-llama2-7b": Profile(
        name="a100-llama2-7b",
        description="Llama-2-7B fp16 on an A100-80GB SXM with vLLM defaults",
        sources=(
            "A100 80GB SXM datasheet: 2,039 GB/s HBM2e, 312 TFLOPS fp16 tensor; weights 13.5 GB "
            "read per step (6.6 ms) + ~1.4 ms overhead; prefill at 55 % of peak; KV pool = "
            "0.9·80 GB − 13.5 GB weights − ~2 GB activations = 56.5 GB / 524 KB per token; context "
            "4,096 tokens (Llama-2's max_position_embeddings)."
        ),
        c0_s=0.008,
        c_p_s=8.0e-5,
        c_d_s=4.0e-5,
        c_kv_s=LLAMA2_7B_KV / 2039e9,
        params=LLAMA2_7B_PARAMS,
        weight_bytes=LLAMA2_7B_PARAMS * 2,
        kv_bytes_per_token=LLAMA2_7B_KV,
        peak_flops=312e12,
        peak_bytes_s=2039e9,
        kv_capacity_tokens=107_000,
    ),
    "h100-llama3-8b": Profile(
        name="h100-llama3-8b",
        description="Llama-3-8B bf16 on an H100 80GB SXM with vLLM defaults",
        sources=(
            "H100 SXM datasheet: 3,350 GB/s HBM3, 989 TFLOPS bf16 dense; Llama-3-8B: 8.03e9 params, "
            "GQA with 8 KV heads (131 KB KV per token); weights 16 GB read per step (4.8 ms) + "
            "~1.2 ms overhead; prefill at 50 % of peak; KV pool = 0.9·80 − 16 − 2 GB = 54 GB; "
            "context 8,192 tokens (Llama-3-8B's)."
        ),
        c0_s=0.006,
        c_p_s=3.2e-5,
        c_d_s=1.6e-5,
        c_kv_s=LLAMA3_8B_KV / 3350e9,
        params=LLAMA3_8B_PARAMS,
        weight_bytes=LLAMA3_8B_PARAMS * 2,
        kv_bytes_per_token=LLAMA3_8B_KV,
        peak_flops=989e12,
        peak_bytes_s=3350e9,
        kv_capacity_tokens=412_000,
        max_model_len=8192,  # Llama-3-8B's context
    ),
}
DEFAULT_PROFILE = "a100-llama2-7b"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise unknown_name("profile", name, tuple(PROFILES))
    return PROFILES[name]
