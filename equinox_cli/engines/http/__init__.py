"""An aiohttp client that replays a workload open-loop against an OpenAI-compatible server."""
