"""A discrete-step simulator of a continuous-batching LLM engine with paged KV blocks."""
