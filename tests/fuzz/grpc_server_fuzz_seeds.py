#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/corpus/grpc_server_fuzz/ (run from the repo root).

An input is one chunking seed byte, then HTTP/2 frames that follow the client
preface (grpc_server_fuzz.cc sends the preface itself). Header blocks use
HPACK literals without Huffman coding or indexing, so every byte is visible.
Rerunning rewrites the same files.
"""
import gzip
import os
import struct

ROOT = "tests/fuzz/corpus/grpc_server_fuzz"

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def headers(stream, path, extra=(), end_stream=False, content_type="application/grpc"):
    block = literal(":method", "POST") + literal(":scheme", "http") + literal(":path", path)
    block += literal(":authority", "fuzz") + literal("content-type", content_type)
    block += literal("te", "trailers")
    for name, value in extra:
        block += literal(name, value)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block)


def echo_request(message, code=None):
    body = b"\x0a" + bytes([len(message)]) + message.encode()
    if code is not None:
        body += b"\x10" + bytes([code])
    return body


def message(body, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(body)) + body


def data(stream, payload, end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, stream, payload)


SETTINGS_EMPTY = frame(SETTINGS, 0, 0)


def unary(stream, path, body, extra=()):
    return headers(stream, path, extra) + data(stream, message(body), True)


SEEDS = {
    "unary_echo": SETTINGS_EMPTY + unary(1, "/example.EchoService/Echo", echo_request("hi")),
    "unary_fail": SETTINGS_EMPTY + unary(1, "/example.EchoService/Fail", echo_request("no", 5)),
    "unknown_method": SETTINGS_EMPTY + unary(1, "/example.EchoService/Nope", echo_request("x")),
    "unknown_service": SETTINGS_EMPTY + unary(1, "/no.Such/Echo", echo_request("x")),
    "bad_content_type": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo",
                                                  content_type="text/plain") + data(1, b"{}", True),
    "pipelined_unary": SETTINGS_EMPTY + b"".join(
        unary(i, "/example.EchoService/Echo", echo_request("m%d" % i)) for i in range(1, 20, 2)),
    "bidi": SETTINGS_EMPTY + headers(1, "/fuzz.Streams/Bidi") + b"".join(
        data(1, message(echo_request("b%d" % i))) for i in range(3)) + data(1, b"", True),
    "bidi_open": SETTINGS_EMPTY + headers(1, "/fuzz.Streams/Bidi") +
                 data(1, message(echo_request("open"))),
    "server_stream": SETTINGS_EMPTY + headers(3, "/fuzz.Streams/Server") +
                     data(3, message(echo_request("s", 16)), True),
    "reset": SETTINGS_EMPTY + headers(1, "/fuzz.Streams/Bidi") +
             frame(RST, 0, 1, struct.pack(">I", 8)),
    "rapid_reset": SETTINGS_EMPTY + b"".join(
        headers(i, "/fuzz.Streams/Bidi") + frame(RST, 0, i, struct.pack(">I", 8))
        for i in range(1, 80, 2)),
    "ping_and_window_updates": SETTINGS_EMPTY + frame(PING, 0, 0, b"12345678") + b"".join(
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) for _ in range(50)) +
        unary(1, "/example.EchoService/Echo", echo_request("after")),
    "four_gib_prefix": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo") +
                       data(1, b"\x00\xff\xff\xff\xff"),
    "gzip": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo",
                                     [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")]) +
            data(1, message(gzip.compress(echo_request("zipped"), mtime=0), True), True),
    "unknown_encoding": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo",
                                                 [("grpc-encoding", "br")]) +
                        data(1, message(echo_request("x"), True), True),
    "metadata_and_timeout": SETTINGS_EMPTY + unary(
        1, "/example.EchoService/Echo", echo_request("md"),
        [("grpc-timeout", "100m"), ("x-a", "b"), ("x-b-bin", "AAEC"),
         ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]),
    "two_messages_unary": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo") +
                          data(1, message(echo_request("a")) + message(echo_request("b")), True),
    "truncated_message": SETTINGS_EMPTY + headers(1, "/example.EchoService/Echo") +
                         data(1, message(echo_request("abc"))[:-2], True),
    "client_trailers": SETTINGS_EMPTY + headers(1, "/fuzz.Streams/Bidi") +
                       data(1, message(echo_request("t"))) +
                       frame(HEADERS, END_HEADERS | END_STREAM, 1, literal("x-trailer", "v")),
    "goaway_from_client": SETTINGS_EMPTY + unary(1, "/example.EchoService/Echo", echo_request("g")) +
                          frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)),
    "data_on_stream_zero": SETTINGS_EMPTY + data(0, b"xx"),
    "small_window": frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 10)) +
                    headers(1, "/fuzz.Streams/Server") + data(1, message(echo_request("w" * 40, 16)), True),
    "too_many_streams": SETTINGS_EMPTY + b"".join(
        headers(i, "/fuzz.Streams/Bidi") for i in range(1, 40, 2)),
}


def main():
    os.makedirs(ROOT, exist_ok=True)
    for i, (name, body) in enumerate(sorted(SEEDS.items())):
        # Seed byte: whole (0), tiny pieces (1) or medium pieces (2), by turns.
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(bytes([i % 3]) + body)


if __name__ == "__main__":
    main()
