"""Kernel receive timestamps: when a chunk's bytes reached the machine, not when the client
got to them.

A stamp taken in the connection protocol's `data_received` is as late as the event loop
is: a client busy finishing and resending a wave of requests gets to a socket that became
readable milliseconds ago. Linux stamps every incoming segment itself (`SO_TIMESTAMPNS`)
and hands the stamp of the last segment a read consumed to `recvmsg` as ancillary data,
however late the read. `kernel_reads` makes a connection's transport read that way; the
protocol then stamps each read with `last_arrival`, converted from the kernel's
CLOCK_REALTIME to the perf_counter clock every other stamp uses (both clocks are slewed
alike by NTP, so their offset holds; a stamp the conversion would put in the future, a
clock step, falls back to now).

This replaces one method of asyncio's plain-TCP socket transport (`_read_ready_cb`, the
callback its selector calls when the socket is readable) with the same logic around
`recvmsg`; transports it does not recognise (TLS, uvloop, another platform) keep their
own reads, and the protocol then stamps on `data_received` as before.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value on every arch
_ANCILLARY = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
_perf, _real = time.perf_counter_ns, time.time_ns


def kernel_reads(transport: Any, protocol: Any) -> bool:
    """Make `transport` read with kernel timestamps, setting `protocol.kitt_arrival` before
    each `data_received`. False (nothing changed) where that is not possible."""
    if not sys.platform.startswith("linux") or not _ANCILLARY:
        return False
    sock = getattr(transport, "_sock", None)
    needed = ("_read_ready_cb", "_fatal_error", "_read_ready__on_eof", "_conn_lost",
              "max_size")
    if (not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM
            or not all(hasattr(transport, name) for name in needed)
            or getattr(transport, "_read_ready_cb", None)
            != getattr(transport, "_read_ready__data_received", None)):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    recvmsg, max_size = sock.recvmsg, transport.max_size

    def read_ready() -> None:  # asyncio's _read_ready__data_received, around recvmsg
        if transport._conn_lost:
            return
        try:
            data, ancillary, _, _ = recvmsg(max_size, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transport._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            transport._read_ready__on_eof()
            return
        protocol.kitt_arrival = _arrival(ancillary)
        try:
            protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transport._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    transport._read_ready_cb = read_ready
    return True


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> int:
    now = _perf()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            stamp = seconds * 1_000_000_000 + nanoseconds - (_real() - _perf())
            return stamp if stamp <= now else now
    return now
