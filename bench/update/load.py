#!/usr/bin/python3
"""bench/update's load client: HTTP GETs on a fixed schedule (RATE per second, request i sent
at start + i/RATE whatever the answers do), each with its own connection and a TIMEOUT.
One CSV line per request, written when it ends: send_ms,answer_ms,ok,version,error
(wall-clock milliseconds, so they compare with the daemon's event times; answer_ms is when
the whole answer was read, or when the request failed). `version` is the inventory JSON's
"version" field (1 when it has none), so the rows say which instance answered.
Runs until SIGTERM/SIGINT (or --duration seconds), then waits for the requests in flight.
"""
import argparse
import asyncio
import errno
import re
import signal
import sys
import time

VERSION = re.compile(rb'"version":\s*(\d+)')


async def one(port, path, timeout, out):
    send = time.time()
    ok, version, error = 0, 0, ""
    writer = None
    try:
        async def exchange():
            nonlocal writer
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: bench\r\n\r\n")
            await writer.drain()
            return await reader.read(-1)

        body = await asyncio.wait_for(exchange(), timeout)
        if body.startswith(b"HTTP/1.") and body[9:12] == b"200":
            ok = 1
            m = VERSION.search(body)
            version = int(m.group(1)) if m else 1
        else:
            error = "status-" + body[9:12].decode(errors="replace") if body else "empty"
    except asyncio.TimeoutError:
        error = "timeout"
    except ConnectionRefusedError:
        error = "refused"
    except ConnectionResetError:
        error = "reset"
    except OSError as e:
        # asyncio reports a refused connect as a bare OSError ("Connect call failed") when
        # it tried several addresses; errno says what it was.
        error = errno.errorcode.get(e.errno, type(e).__name__) if e.errno else "refused"
    finally:
        if writer is not None:
            writer.close()
    out.write("%.1f,%.1f,%d,%d,%s\n" % (send * 1000, time.time() * 1000, ok, version, error))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--path", default="/inventory.json")
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = set()
    with open(a.out, "w", buffering=1) as out:
        out.write("send_ms,answer_ms,ok,version,error\n")
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i / a.rate
            if a.duration and due - start > a.duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            t = asyncio.create_task(one(a.port, a.path, a.timeout, out))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
