"""Read what is readable from a truncated or damaged MCAP file (rosbags refuses one without its footer).

Walks the records from the start (MCAP spec: 8-byte magic, then opcode u8 + length u64 + content) and
the records inside chunks (uncompressed, zstd or lz4), collecting schemas, channels and messages until
the data ends or stops making sense. The result behaves like a rosbags Reader for lix_ros's needs.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x03, 0x04, 0x05, 0x06


@dataclass
class SalvagedConnection:
    id: int
    topic: str
    msgtype: str
    msgcount: int = 0


def _string(buffer: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", buffer, offset)
    return buffer[offset + 4: offset + 4 + length].decode(), offset + 4 + length


def _decompress(kind: str, data: bytes, size: int) -> bytes:
    if kind == "":
        return data
    if kind == "zstd":
        from backports import zstd  # shipped with rosbags

        return zstd.decompress(data)
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    raise ValueError(f"unknown chunk compression {kind!r}")


class SalvagedBag:
    partial = True

    def __init__(self, mcap_path: str | Path):
        self.path = Path(mcap_path)
        self.schemas: dict[int, str] = {}
        self.channels: dict[int, SalvagedConnection] = {}
        self.records: list[tuple[int, int, bytes]] = []  # (channel id, log time, data)
        self.partial_reason = ""
        self._read(self.path.read_bytes())
        self.connections = list(self.channels.values())
        self.start_time = min((t for _, t, _ in self.records), default=0)

    def _read(self, data: bytes) -> None:
        if not data.startswith(MAGIC):
            raise ValueError(f"{self.path} is not an MCAP file (bad magic)")
        offset = len(MAGIC)
        while offset + 9 <= len(data):
            op = data[offset]
            (length,) = struct.unpack_from("<Q", data, offset + 1)
            body = data[offset + 9: offset + 9 + length]
            if len(body) < length:
                self.partial_reason = f"truncated at byte {offset} of {len(data)} (record 0x{op:02x})"
                if op == OP_CHUNK:  # a recording cut mid-chunk: keep its complete records
                    with contextlib.suppress(struct.error, ValueError, UnicodeDecodeError):
                        self._record(op, body, truncated=True)
                return
            try:
                self._record(op, body)
            except (struct.error, ValueError, UnicodeDecodeError) as error:
                self.partial_reason = f"damaged record 0x{op:02x} at byte {offset}: {error}"
                return
            offset += 9 + length
        self.partial_reason = self.partial_reason or "ended without an MCAP footer"

    def _record(self, op: int, body: bytes, truncated: bool = False) -> None:
        if op == OP_SCHEMA:
            (schema_id,) = struct.unpack_from("<H", body, 0)
            name, _ = _string(body, 2)
            self.schemas[schema_id] = name
        elif op == OP_CHANNEL:
            channel_id, schema_id = struct.unpack_from("<HH", body, 0)
            topic, _ = _string(body, 4)
            self.channels[channel_id] = SalvagedConnection(channel_id, topic, self.schemas.get(schema_id, "?"))
        elif op == OP_MESSAGE:
            channel_id, _sequence, log_time, _publish_time = struct.unpack_from("<HIQQ", body, 0)
            self.records.append((channel_id, log_time, bytes(body[22:])))
            if channel_id in self.channels:
                self.channels[channel_id].msgcount += 1
        elif op == OP_CHUNK:
            _start, _end, size, _crc = struct.unpack_from("<QQQI", body, 0)
            compression, offset = _string(body, 28)
            (records_length,) = struct.unpack_from("<Q", body, offset)
            if truncated and compression:
                return  # a cut compressed stream cannot be decoded
            inner = _decompress(compression, body[offset + 8: offset + 8 + records_length], size)
            position = 0
            while position + 9 <= len(inner):
                inner_op = inner[position]
                (inner_length,) = struct.unpack_from("<Q", inner, position + 1)
                if position + 9 + inner_length > len(inner):
                    break  # the cut record
                self._record(inner_op, inner[position + 9: position + 9 + inner_length])
                position += 9 + inner_length

    def messages(self, connections=(), start: int | None = None):
        wanted = {c.id for c in connections} if connections else set(self.channels)
        for channel_id, log_time, data in sorted(self.records, key=lambda r: r[1]):
            if channel_id in wanted and channel_id in self.channels and (start is None or log_time >= start):
                yield self.channels[channel_id], log_time, data

    def close(self) -> None:
        pass
