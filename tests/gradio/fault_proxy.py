#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 reverse proxy for the tests of thumbgen's HTTP clients: the Gradio
client, and the S3 client of the storage tests (stdlib only).

    python tests/gradio/fault_proxy.py --listen PORT --target http://127.0.0.1:APPPORT \
        --plan PLAN --log FILE

PLAN is a comma-separated list of FAULT:N (N = how many times the fault fires; after that the
proxy is transparent for that fault), or `none`:

  drop_sse:N   first N SSE responses (content-type text/event-stream): forward the headers and
               whatever body arrives within --drop-after seconds (default 1), except data that
               carries a terminal event (complete/error/process_completed/close_stream), then
               abort both the client and the upstream connection (no terminating chunk).
  stall_sse:N  first N SSE responses: forward the headers, then forward nothing more (upstream is
               still read and discarded, so gradio sees a live listener) and keep the client
               connection open until the client goes away.
  http5xx:N    first N requests whose path ends with /upload: `502 Bad Gateway` (text body),
               upstream is not contacted.
  http429:N    first N submit requests (POST to a path ending /queue/join, or containing /call/):
               `429 Too Many Requests` with `Retry-After: 1`, upstream is not contacted.
  slowdown:N   first N requests of any kind: `503 Slow Down` with the S3 error body (code
               SlowDown), as a throttling object store answers; upstream is not contacted.
  hold_copy:N  first N S3 server-side copies (a PUT with `x-amz-copy-source`): logged as `held`
               when they arrive, then forwarded after --hold seconds (default 3), so a test can
               change the source object while the copy is under way.

One request per connection: the request is forwarded with `Connection: close`, the response comes
back byte for byte (status line, headers, body framing) except that `Connection: close` replaces any
Connection/Keep-Alive header, and the client connection is closed after the response. Response
bodies are relayed as they arrive (SSE is never buffered).

Prints `READY <port>` on stdout once listening. Appends `METHOD PATH -> STATUS[ NOTE]` to --log for
every request (NOTE names the fault applied, e.g. `drop_sse`, or `upstream-unreachable`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from urllib.parse import urlsplit

FAULTS = ("drop_sse", "stall_sse", "http5xx", "http429", "slowdown", "hold_copy")
MAX_HEAD = 64 * 1024
# drop_sse never forwards the data that finishes a job, even when the job ends within --drop-after.
TERMINAL_SSE = (b"event: complete", b"event: error", b"process_completed", b"close_stream")


def parse_plan(text: str) -> dict[str, int]:
    plan = {f: 0 for f in FAULTS}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if item == "none":
            continue
        name, _, count = item.partition(":")
        if name not in FAULTS:
            raise SystemExit(f"fault_proxy: unknown fault {name!r} (known: {', '.join(FAULTS)}, none)")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise SystemExit(f"fault_proxy: bad count in {item!r}") from None
        plan[name] += n
    return plan


class Head:
    """A parsed HTTP/1.1 message head (request or response)."""

    def __init__(self, raw: bytes) -> None:
        lines = raw.split(b"\r\n")
        self.start = lines[0].decode("latin-1")
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.decode("latin-1").partition(":")
            self.headers.append((name.strip(), value.strip()))

    def get(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def with_connection_close(self) -> bytes:
        """The head again, with Connection/Keep-Alive/Proxy-Connection replaced by Connection: close."""
        drop = {"connection", "keep-alive", "proxy-connection"}
        out = [self.start] + [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        out.append("Connection: close")
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


class Proxy:
    def __init__(self, target: str, plan: dict[str, int], log_path: str | None, drop_after: float,
                 hold: float):
        u = urlsplit(target)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit("fault_proxy: --target must be http://HOST:PORT")
        self.up_host = u.hostname
        self.up_port = u.port or 80
        self.plan = plan
        self.log_path = log_path
        self.drop_after = drop_after
        self.hold = hold

    # ---------------------------------------------------------------------------------------

    def log(self, method: str, target: str, status: int | str, note: str = "") -> None:
        line = f"{method} {target} -> {status}{' ' + note if note else ''}\n"
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
        print(f"fault_proxy: {time.strftime('%H:%M:%S')} {line}", end="", file=sys.stderr, flush=True)

    def take(self, fault: str) -> bool:
        if self.plan.get(fault, 0) > 0:
            self.plan[fault] -= 1
            return True
        return False

    # ---------------------------------------------------------------------------------------

    async def handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        method, target = "-", "-"
        try:
            try:
                raw = await creader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            req = Head(raw[:-4])
            parts = req.start.split(" ")
            if len(parts) != 3:
                await self.synthetic(creader, cwriter, req, 400, "Bad Request", b"bad request line\n")
                return
            method, target = parts[0], parts[1]
            path = target.split("?", 1)[0]

            if self.take("slowdown"):
                self.log(method, target, 503, "slowdown")
                await self.synthetic(creader, cwriter, req, 503, "Slow Down",
                                     b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                                     b'<Message>Please reduce your request rate.</Message></Error>')
                return
            if method == "PUT" and req.get("x-amz-copy-source") and self.take("hold_copy"):
                self.log(method, target, "held", "hold_copy")
                await asyncio.sleep(self.hold)
            if path.endswith("/upload") and self.take("http5xx"):
                self.log(method, target, 502, "http5xx")
                await self.synthetic(creader, cwriter, req, 502, "Bad Gateway",
                                     b"502 Bad Gateway (injected by fault_proxy)\n")
                return
            if method == "POST" and (path.endswith("/queue/join") or "/call/" in path) \
                    and self.take("http429"):
                self.log(method, target, 429, "http429")
                await self.synthetic(creader, cwriter, req, 429, "Too Many Requests",
                                     b"429 Too Many Requests (injected by fault_proxy)\n",
                                     extra=[("Retry-After", "1")])
                return

            try:
                ureader, uwriter = await asyncio.open_connection(self.up_host, self.up_port)
            except OSError as e:
                self.log(method, target, 502, "upstream-unreachable")
                await self.synthetic(creader, cwriter, req, 502, "Bad Gateway",
                                     f"upstream unreachable: {e}\n".encode())
                return
            try:
                await self.forward(method, target, req, creader, cwriter, ureader, uwriter)
            finally:
                uwriter.transport.abort() if uwriter.transport else None
        except Exception as e:  # noqa: BLE001 - a proxy must not die on one bad connection
            print(f"fault_proxy: {method} {target}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        finally:
            if not cwriter.transport.is_closing():
                cwriter.close()

    async def forward(self, method, target, req, creader, cwriter, ureader, uwriter) -> None:
        uwriter.write(req.with_connection_close())
        await uwriter.drain()

        # Request body (any framing, and 100-continue) goes up as raw bytes until either side ends.
        async def client_to_upstream() -> None:
            try:
                while True:
                    data = await creader.read(65536)
                    if not data:
                        break
                    uwriter.write(data)
                    await uwriter.drain()
            except (ConnectionError, OSError):
                pass

        up_task = asyncio.ensure_future(client_to_upstream())
        try:
            while True:  # forward interim 1xx responses (100 Continue) and stop at the final one
                try:
                    raw = await ureader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.log(method, target, "EOF", "upstream closed without response")
                    cwriter.transport.abort()
                    return
                resp = Head(raw[:-4])
                try:
                    status = int(resp.start.split(" ")[1])
                except (IndexError, ValueError):
                    status = 0
                if 100 <= status < 200 and status != 101:
                    cwriter.write(raw)
                    await cwriter.drain()
                    continue
                break

            ctype = (resp.get("content-type") or "").lower()
            fault = ""
            if ctype.startswith("text/event-stream"):
                if self.take("drop_sse"):
                    fault = "drop_sse"
                elif self.take("stall_sse"):
                    fault = "stall_sse"
            self.log(method, target, status, fault)
            cwriter.write(resp.with_connection_close())
            await cwriter.drain()

            if fault == "drop_sse":
                await self.relay(ureader, cwriter, deadline=time.monotonic() + self.drop_after,
                                 stop_at=TERMINAL_SSE)
                cwriter.transport.abort()
                uwriter.transport.abort()
            elif fault == "stall_sse":
                await self.stall(ureader, up_task)
                cwriter.transport.abort()
            else:
                await self.relay(ureader, cwriter)
                if cwriter.can_write_eof():
                    cwriter.write_eof()
                await cwriter.drain()
        finally:
            up_task.cancel()

    async def relay(self, ureader, cwriter, deadline: float | None = None,
                    stop_at: tuple[bytes, ...] = ()) -> None:
        """Copy upstream to client as it arrives, until EOF, the deadline, or (not forwarded) a
        piece of data that contains one of `stop_at`."""
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            try:
                data = await asyncio.wait_for(ureader.read(65536), timeout)
            except asyncio.TimeoutError:
                return
            except (ConnectionError, OSError):
                return
            if not data or any(marker in data for marker in stop_at):
                return
            cwriter.write(data)
            try:
                await cwriter.drain()
            except (ConnectionError, OSError):
                return

    async def stall(self, ureader, up_task: asyncio.Future) -> None:
        """Discard upstream data; return when the client goes away (its reader hits EOF)."""

        async def sink() -> None:
            try:
                while await ureader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass

        sink_task = asyncio.ensure_future(sink())
        try:
            await up_task  # ends when the client closes its side
        finally:
            sink_task.cancel()

    async def synthetic(self, creader, cwriter, req: Head, status: int, reason: str, body: bytes,
                        extra: list[tuple[str, str]] | None = None) -> None:
        """Answer without upstream: consume the request body first (unless the client is waiting
        for 100-continue), answer with Connection: close, then linger briefly so the client reads
        the response before the socket goes away."""
        expect_continue = (req.get("expect") or "").lower() == "100-continue"
        if not expect_continue:
            await self.discard_body(creader, req)
        head = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain; charset=utf-8",
                f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in extra or []]
        cwriter.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await cwriter.drain()
            if cwriter.can_write_eof():
                cwriter.write_eof()
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                data = await asyncio.wait_for(creader.read(65536), end - time.monotonic())
                if not data:
                    break
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass

    async def discard_body(self, creader, req: Head) -> None:
        try:
            if "chunked" in (req.get("transfer-encoding") or "").lower():
                while True:
                    line = await creader.readuntil(b"\r\n")
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while (await creader.readuntil(b"\r\n")) != b"\r\n":
                            pass  # trailers
                        return
                    await creader.readexactly(size + 2)
            else:
                n = int(req.get("content-length") or 0)
                if n:
                    await asyncio.wait_for(creader.readexactly(n), 30)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, ConnectionError):
            pass


async def amain(args) -> None:
    proxy = Proxy(args.target, parse_plan(args.plan), args.log, args.drop_after, args.hold)
    if args.log:
        open(args.log, "a").close()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.listen, limit=MAX_HEAD)
    port = server.sockets[0].getsockname()[1]
    print(f"fault_proxy: 127.0.0.1:{port} -> {args.target} plan={proxy.plan}", file=sys.stderr, flush=True)
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--target", required=True, help="upstream base URL, http://127.0.0.1:PORT")
    ap.add_argument("--plan", default="none", help="e.g. drop_sse:1,http429:2 or none")
    ap.add_argument("--log", help="file that gets one line per request")
    ap.add_argument("--drop-after", type=float, default=1.0,
                    help="seconds of SSE body to forward before drop_sse cuts the stream")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds hold_copy holds a copy")
    args = ap.parse_args()
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
