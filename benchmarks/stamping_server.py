"""A minimal streaming completions server that records when each request *reached* it.

The instrument of `bench_http_client.py`. It runs in its own process with a plain `selectors`
loop (no asyncio, no aiohttp: its own work must not move the stamps) and asks the kernel to stamp
every received segment (SO_TIMESTAMPNS): a request's arrival is the kernel time of the segment
that completed it, so a busy server loop delays reading but not the stamp. Where the kernel option
is missing (not Linux) it falls back to the loop's own clock and says so.

Each answer is an OpenAI completions stream in HTTP/1.1 chunked encoding (keep-alive): the first
token after `ttft_s`, the next ones `itl_s` apart, each chunk naming its token id (vLLM's
`return_token_ids`), then a usage chunk and `[DONE]`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

SO_TIMESTAMPNS = 35  # Linux (asm-generic): not exported by Python's socket module
TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
CHUNK = b'data: {"choices": [{"index": 0, "text": "x", "token_ids": [7]}]}\n\n'


@dataclass(slots=True)
class _Conn:
    sock: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    last_stamp_ns: int = 0


@dataclass(slots=True)
class Stamp:
    request_id: str
    kernel_ns: int  # CLOCK_REALTIME of the completing segment (0 when the kernel gave none)
    loop_ns: int  # CLOCK_MONOTONIC when this loop parsed the request


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _split_request(inbox: bytearray) -> tuple[bytes, int] | None:
    """(body, bytes consumed) of the first complete request in `inbox`, None while incomplete."""
    head_end = inbox.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    length = 0
    for line in bytes(inbox[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    end = head_end + 4 + length
    if len(inbox) < end:
        return None
    return bytes(inbox[head_end + 4 : end]), end


class StampingServer:
    def __init__(self, listener: socket.socket, ttft_s: float, itl_s: float) -> None:
        self.listener = listener
        self.ttft_s, self.itl_s = ttft_s, itl_s
        self.selector = selectors.DefaultSelector()
        self.stamps: list[Stamp] = []
        self.kernel_stamps = True
        self.due: list[tuple[float, int, _Conn, int, int]] = []  # (time, seq, conn, left, total)
        self.seq = itertools.count()

    def serve(self, control: Connection) -> None:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(control, selectors.EVENT_READ, "control")
        while True:
            timeout = max(0.0, self.due[0][0] - time.monotonic()) if self.due else None
            for key, events in self.selector.select(timeout):
                if key.data == "accept":
                    self._accept()
                elif key.data == "control":
                    control.recv()
                    stamps = [(s.request_id, s.kernel_ns, s.loop_ns) for s in self.stamps]
                    control.send(
                        {"kernel": self.kernel_stamps, "stamps": stamps, "cpu_s": time.process_time()}
                    )
                    return
                elif events & selectors.EVENT_READ:
                    self._read(key.data)
                if events & selectors.EVENT_WRITE and isinstance(key.data, _Conn):
                    self._flush(key.data)
            self._emit_due()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                self.kernel_stamps = False
            self.selector.register(sock, selectors.EVENT_READ, _Conn(sock))

    def _read(self, conn: _Conn) -> None:
        try:
            data, ancillary, _, _ = conn.sock.recvmsg(65536, socket.CMSG_SPACE(TIMESPEC.size))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        if not data:
            self.selector.unregister(conn.sock)
            conn.sock.close()
            return
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= TIMESPEC.size:
                seconds, nanos = TIMESPEC.unpack(raw[: TIMESPEC.size])
                conn.last_stamp_ns = seconds * 1_000_000_000 + nanos
        conn.inbox += data
        while (split := _split_request(conn.inbox)) is not None:
            body, used = split
            del conn.inbox[:used]
            self._answer(conn, body)

    def _answer(self, conn: _Conn, body: bytes) -> None:
        obj = json.loads(body)
        xargs = obj.get("vllm_xargs") or {}
        request_id = str(xargs.get("equinox_request", len(self.stamps)))
        self.stamps.append(Stamp(request_id, conn.last_stamp_ns, time.monotonic_ns()))
        self._send(
            conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        tokens = int(obj["max_tokens"])
        heapq.heappush(self.due, (time.monotonic() + self.ttft_s, next(self.seq), conn, tokens, tokens))

    def _emit_due(self) -> None:
        now = time.monotonic()
        while self.due and self.due[0][0] <= now:
            _, _, conn, left, total = heapq.heappop(self.due)
            if conn.sock.fileno() < 0:
                continue
            self._send(conn, _chunked(CHUNK))
            if left > 1:
                heapq.heappush(self.due, (now + self.itl_s, next(self.seq), conn, left - 1, total))
                continue
            usage = json.dumps({"choices": [], "usage": {"completion_tokens": total}}).encode()
            self._send(
                conn, _chunked(b"data: " + usage + b"\n\n") + _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
            )

    def _send(self, conn: _Conn, data: bytes) -> None:
        if not conn.outbox:
            try:
                sent = conn.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return
            data = data[sent:]
            if not data:
                return
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        conn.outbox += data

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except BlockingIOError:
            return
        except OSError:
            conn.outbox.clear()
            sent = 0
        del conn.outbox[:sent]
        if not conn.outbox:
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)


def run(control: Connection, ttft_s: float, itl_s: float) -> None:
    """Process entry: bind a loopback port, send it over `control`, serve until asked for the stamps."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    control.send(listener.getsockname()[1])
    StampingServer(listener, ttft_s, itl_s).serve(control)
    sys.exit(0)
