"""Features known before a request runs, computed the same way offline (training) and online.

Three families (names are the manifest's feature list; order matters):
  prompt  prompt length and cheap text features: sizes, question marks, code markers and keyword
          groups that signal a long answer (write, explain, code, list) or a short one (one word,
          yes/no, brief). NaN when the trace has no text (the trees route NaN explicitly).
  history the client's finished requests so far: count, EMA and window-5 mean of log output length,
          last output, and the global mean over every client. Offline, history is replayed in event
          order with finishes before arrivals at equal times, so no row sees its own future.
  load    running and waiting requests and KV use when the request arrived (latency targets only).
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRIOR_OUTPUT_TOKENS = 128.0  # what anyone would guess before a single request has finished
HISTORY_EMA = 0.3
HISTORY_WINDOW = 5  # VTC's moving average window

KEYWORDS: dict[str, tuple[str, ...]] = {
    "kw_code": (
        "code",
        "function",
        "script",
        "program",
        "implement",
        "python",
        "javascript",
        "sql",
        "class",
        "bug",
    ),
    "kw_long": (
        "write",
        "essay",
        "story",
        "article",
        "detailed",
        "comprehensive",
        "blog",
        "report",
        "step by step",
    ),
    "kw_explain": ("explain", "describe", "why", "how", "compare", "difference", "analyze", "analyse"),
    "kw_list": ("list", "steps", "outline", "ideas", "examples", "plan", "table"),
    "kw_short": (
        "brief",
        "briefly",
        "short",
        "concise",
        "only",
        "just",
        "single",
        "one word",
        "yes or no",
        "true or false",
    ),
    "kw_math": (
        "calculate",
        "solve",
        "equation",
        "prove",
        "probability",
        "integral",
        "compute",
        "=",
        "+",
        "^",
    ),
    "kw_rewrite": ("translate", "summarize", "summarise", "rewrite", "paraphrase", "correct", "fix"),
}
# Single words are counted from one tokenisation pass; phrases and symbols by substring counts.
_WORD_GROUP = {w: g for g, words in KEYWORDS.items() for w in words if w.isalpha()}
_OTHER = tuple((g, w) for g, words in KEYWORDS.items() for w in words if not w.isalpha())
_WORDS = re.compile(r"[a-z]+")
TEXT_SCAN_CHARS = 1000  # keywords are searched in the first 1,000 characters (the instruction)

TEXT_FEATURES = (
    "has_text",
    "text_chars_log",
    "text_lines_log",
    "text_words_log",  # log(1 + spaces + 1): a word count without splitting the text
    "text_questions",
    "text_code_marks",
    *KEYWORDS,
)
PROMPT_FEATURES = ("prompt_tokens_log", *TEXT_FEATURES)
HISTORY_FEATURES = (
    "hist_count_log",
    "hist_ema_log",
    "hist_mean5_log",
    "hist_last_log",
    "global_mean_log",
)
LOAD_FEATURES = ("running_at_arrival", "waiting_at_arrival", "kv_used_frac_at_arrival")
OUTPUT_FEATURES = (*PROMPT_FEATURES, *HISTORY_FEATURES)
LATENCY_FEATURES = (*OUTPUT_FEATURES, *LOAD_FEATURES)
STEP_FEATURES = ("prefill_tokens", "decode_seqs", "context_tokens", "running", "kv_used_frac")


def text_features(prompt: str | None) -> tuple[float, ...]:
    """TEXT_FEATURES of one prompt (NaN for every feature but has_text when there is no text)."""
    if not prompt:
        return (0.0, *([math.nan] * (len(TEXT_FEATURES) - 1)))
    head = prompt[:TEXT_SCAN_CHARS].lower()
    counts = dict.fromkeys(KEYWORDS, 0)
    for word in _WORDS.findall(head):
        group = _WORD_GROUP.get(word)
        if group is not None:
            counts[group] += 1
    for group, phrase in _OTHER:
        counts[group] += head.count(phrase)
    return (
        1.0,
        math.log1p(len(prompt)),
        math.log1p(prompt.count("\n")),
        math.log1p(prompt.count(" ") + 1),
        float(min(prompt.count("?"), 10)),
        float(prompt.count("```") + prompt.count("def ") + prompt.count("{")),
        *(float(v) for v in counts.values()),
    )


@dataclass(slots=True)
class _Client:
    count: int = 0
    ema_log: float = 0.0
    last5: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY_WINDOW))


class ClientHistory:
    """Per-client output history, updated as requests finish (the same object offline and online)."""

    def __init__(self) -> None:
        self._clients: dict[str, _Client] = {}
        self._sum_log = 0.0
        self._sum_tokens = 0
        self._count = 0

    def observe(self, client_id: str, output_tokens: int) -> None:
        state = self._clients.get(client_id)
        if state is None:
            state = self._clients[client_id] = _Client()
        value = math.log1p(output_tokens)
        state.ema_log = value if state.count == 0 else state.ema_log + HISTORY_EMA * (value - state.ema_log)
        state.count += 1
        state.last5.append(output_tokens)
        self._sum_log += value
        self._sum_tokens += output_tokens
        self._count += 1

    def features(self, client_id: str) -> tuple[float, ...]:
        """HISTORY_FEATURES for the client's next request."""
        glob = self._sum_log / self._count if self._count else math.nan
        state = self._clients.get(client_id)
        if state is None or state.count == 0:
            return (0.0, math.nan, math.nan, math.nan, glob)
        mean5 = sum(state.last5) / len(state.last5)
        return (
            math.log1p(state.count),
            state.ema_log,
            math.log1p(mean5),
            math.log1p(state.last5[-1]),
            glob,
        )

    def moving_average(self, client_id: str) -> float:
        """VTC's predictor: mean of the client's last 5 outputs, else the global mean, else the prior."""
        state = self._clients.get(client_id)
        if state is not None and state.count:
            return sum(state.last5) / len(state.last5)
        return self._sum_tokens / self._count if self._count else PRIOR_OUTPUT_TOKENS


def history_route_value(history_row: tuple[float, ...] | np.ndarray) -> float:
    """The output router's input: the client's EMA of log output, else the global mean, else the prior."""
    ema, glob = history_row[1], history_row[4]
    if not math.isnan(ema):
        return float(ema)
    if not math.isnan(glob):
        return float(glob)
    return math.log1p(PRIOR_OUTPUT_TOKENS)


def request_feature_frame(requests: pd.DataFrame) -> pd.DataFrame:
    """Every request feature, plus `moving_average` and `route_output`, for collected request rows.

    History is replayed in time order: finishes (of finished requests) before arrivals at equal times.
    """
    n = len(requests)
    arrival = requests["arrival_s"].to_numpy(dtype=float)
    finish = requests["finish_s"].to_numpy(dtype=float)
    finished = (requests["status"] == "finished").to_numpy()
    clients = requests["client_id"].astype(str).to_numpy()
    outputs = requests["output_tokens"].to_numpy(dtype=np.int64)
    events = [(arrival[i], 1, i) for i in range(n)]
    events += [(finish[i], 0, i) for i in range(n) if finished[i] and math.isfinite(finish[i])]
    events.sort()
    history = ClientHistory()
    hist = np.empty((n, len(HISTORY_FEATURES)))
    moving = np.empty(n)
    for _, kind, i in events:
        if kind == 0:
            history.observe(clients[i], int(outputs[i]))
        else:
            hist[i] = history.features(clients[i])
            moving[i] = history.moving_average(clients[i])
    prompts = requests["prompt"] if "prompt" in requests.columns else pd.Series([None] * n)
    text = np.array([text_features(p if isinstance(p, str) else None) for p in prompts], dtype=float)
    frame = pd.DataFrame(
        text.reshape(n, len(TEXT_FEATURES)), columns=list(TEXT_FEATURES), index=requests.index
    )
    frame.insert(0, "prompt_tokens_log", np.log1p(requests["prompt_tokens"].to_numpy(dtype=float)))
    for j, name in enumerate(HISTORY_FEATURES):
        frame[name] = hist[:, j]
    for name in LOAD_FEATURES:
        frame[name] = requests[name].to_numpy(dtype=float) if name in requests.columns else math.nan
    frame["moving_average"] = moving
    frame["route_output"] = [history_route_value(row) for row in hist]
    return frame


def step_feature_frame(steps: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(index=steps.index)
    for name in ("prefill_tokens", "decode_seqs", "context_tokens", "running"):
        frame[name] = steps[name].to_numpy(dtype=float) if name in steps.columns else math.nan
    if "kv_used_blocks" in steps.columns and "kv_total_blocks" in steps.columns:
        frame["kv_used_frac"] = steps["kv_used_blocks"] / steps["kv_total_blocks"].clip(lower=1)
    else:
        frame["kv_used_frac"] = math.nan
    tokens = frame["prefill_tokens"] + frame["decode_seqs"]
    frame["route_step"] = np.where(tokens > 0, frame["prefill_tokens"] / tokens.clip(lower=1), 0.0)
    return frame
