#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/corpus/grpc_client_fuzz/ (run from the repo root).

An input is one byte (bits 0-6 seed how the rest is cut into writes, bit 7
half-closes the streaming call before the input), then the HTTP/2 frames a
server sends. grpc_client_fuzz.cc opens three unary example.EchoService/Echo
calls on streams 1, 3 and 5 and one fuzz.Streams/Bidi stream on stream 7
before the input starts. Header blocks use HPACK literals without Huffman
coding or indexing, so every byte is visible. Rerunning rewrites the same
files.
"""
import gzip
import os
import struct

from grpc_server_fuzz_seeds import (  # the HTTP/2 frame helpers both scripts use
    ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, RST, SETTINGS,
    WINDOW_UPDATE, data, frame, literal, message)

ROOT = "tests/fuzz/corpus/grpc_client_fuzz"

NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0, 1, 7, 8, 11
UNARY, STREAM = (1, 3, 5), 7


def response_headers(stream, status="200", content_type="application/grpc", extra=(),
                     end_stream=False):
    block = literal(":status", status) + literal("content-type", content_type)
    for name, value in extra:
        block += literal(name, value)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block)


def trailers(stream, code=0, message=None, extra=()):
    block = literal("grpc-status", str(code))
    if message is not None:
        block += literal("grpc-message", message)
    for name, value in extra:
        block += literal(name, value)
    return frame(HEADERS, END_HEADERS | END_STREAM, stream, block)


def echo_response(text):
    return b"\x0a" + bytes([len(text)]) + text.encode()


def rst(stream, code):
    return frame(RST, 0, stream, struct.pack(">I", code))


SETTINGS_EMPTY = frame(SETTINGS, 0, 0)
SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def unary_ok(stream, text="ok"):
    return response_headers(stream) + data(stream, message(echo_response(text))) + trailers(stream)


def stream_ok(count=3):
    return (response_headers(STREAM) +
            b"".join(data(STREAM, message(echo_response("m%d" % i))) for i in range(count)) +
            trailers(STREAM))


ALL_OK = b"".join(unary_ok(s) for s in UNARY) + stream_ok()

SEEDS = {
    "all_ok": SETTINGS_EMPTY + SETTINGS_ACK + ALL_OK,
    "error_trailers": SETTINGS_EMPTY + b"".join(
        response_headers(s) + trailers(s, 5, "not%20found", [("x-why", "gone")]) for s in UNARY) +
        response_headers(STREAM) + trailers(STREAM, 13, "boom"),
    "trailers_only": SETTINGS_EMPTY + b"".join(
        response_headers(s, extra=[("grpc-status", "14"), ("grpc-message", "down")],
                         end_stream=True) for s in UNARY + (STREAM,)),
    "rst_stream": SETTINGS_EMPTY + response_headers(1) + rst(1, REFUSED_STREAM) + rst(3, CANCEL) +
                  rst(5, ENHANCE_YOUR_CALM) + response_headers(STREAM) +
                  data(STREAM, message(echo_response("x"))) + rst(STREAM, PROTOCOL_ERROR),
    "goaway": SETTINGS_EMPTY + unary_ok(1) + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)) +
              unary_ok(3),
    "goaway_error": SETTINGS_EMPTY + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 2) + b"debug"),
    "ping": SETTINGS_EMPTY + frame(PING, 0, 0, b"12345678") + ALL_OK + frame(PING, ACK, 0, b"x" * 8),
    "window_update": SETTINGS_EMPTY + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)) +
                     frame(WINDOW_UPDATE, 0, STREAM, struct.pack(">I", 1000)) + ALL_OK,
    "stream_many_messages": SETTINGS_EMPTY + response_headers(STREAM, extra=[("x-a", "b")]) +
                            data(STREAM, b"".join(message(echo_response("s%d" % i))
                                                  for i in range(20))) +
                            data(STREAM, message(echo_response("split"))[:4]) +
                            data(STREAM, message(echo_response("split"))[4:]) + trailers(STREAM),
    "stream_half_closed": SETTINGS_EMPTY + stream_ok(2) + unary_ok(5),
    "settings_small": frame(SETTINGS, 0, 0, struct.pack(">HIHI", 3, 1, 4, 16)) + ALL_OK,
    "http_errors": SETTINGS_EMPTY + response_headers(1, "503", end_stream=True) +
                   response_headers(3, "404", "text/html", end_stream=True) +
                   response_headers(5, "100") + unary_ok(5),
    "huge_prefix": SETTINGS_EMPTY + response_headers(1) + data(1, b"\x00\xff\xff\xff\xff") +
                   response_headers(STREAM) + data(STREAM, b"\x00\x00\x01\x00\x01"),
    "two_messages_unary": SETTINGS_EMPTY + response_headers(1) +
                          data(1, message(echo_response("a")) + message(echo_response("b"))) +
                          trailers(1),
    "gzip": SETTINGS_EMPTY + response_headers(1, extra=[("grpc-encoding", "gzip")]) +
            data(1, message(gzip.compress(echo_response("zipped"), mtime=0), True)) + trailers(1) +
            response_headers(3) + data(3, message(echo_response("raw"), True)) + trailers(3) +
            response_headers(5, extra=[("grpc-encoding", "br")]) +
            data(5, message(echo_response("br"), True)) + trailers(5),
    "gzip_bomb": SETTINGS_EMPTY + response_headers(STREAM, extra=[("grpc-encoding", "gzip")]) +
                 data(STREAM, message(gzip.compress(b"\x0a\x80\x80\x04" + b"a" * 65536, mtime=0),
                                      True)) + trailers(STREAM),
    "no_trailers": SETTINGS_EMPTY + response_headers(1) + data(1, message(echo_response("n")), True) +
                   response_headers(3, "200", "text/plain") + data(3, message(echo_response("t"))) +
                   trailers(3),
    "truncated_message": SETTINGS_EMPTY + response_headers(1) +
                         data(1, message(echo_response("abc"))[:-2]) + trailers(1),
    "continuation": SETTINGS_EMPTY +
                    frame(HEADERS, 0, 1, literal(":status", "200")) +
                    frame(CONTINUATION, END_HEADERS, 1, literal("content-type", "application/grpc")) +
                    data(1, message(echo_response("c"))) + trailers(1),
    "binary_metadata": SETTINGS_EMPTY + response_headers(1, extra=[("x-b-bin", "AAEC"),
                                                                     ("x-bad-bin", "!!")]) +
                       data(1, message(echo_response("m"))) +
                       trailers(1, 0, None, [("x-t-bin", "AQ==")]),
    "data_on_stream_zero": SETTINGS_EMPTY + data(0, b"xx"),
    "padded_data": SETTINGS_EMPTY + response_headers(1) +
                   frame(DATA, 0x8, 1, b"\x03" + message(echo_response("p")) + b"\0\0\0") + trailers(1),
}

# Inputs the fuzzer found, each with its own first byte (fixed: not by turns).
REGRESSIONS = {
    # RST_STREAM NO_ERROR on a stream whose first headers held grpc-status 0:
    # was OK without the server's END_STREAM, now INTERNAL.
    "rst_no_error_before_end_stream": (0, SETTINGS_EMPTY +
                                       response_headers(1, extra=[("grpc-status", "0")]) +
                                       data(1, message(echo_response("r"))) + rst(1, NO_ERROR)),
}


def main():
    os.makedirs(ROOT, exist_ok=True)
    for i, (name, body) in enumerate(sorted(SEEDS.items())):
        # Seed byte: whole (0), tiny pieces (1) or medium pieces (2), by turns;
        # bit 7 half-closes the stream first (always for stream_half_closed).
        seed = i % 3 | (0x80 if name == "stream_half_closed" or i % 2 else 0)
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(bytes([seed]) + body)
    for name, (seed, body) in REGRESSIONS.items():
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(bytes([seed]) + body)


if __name__ == "__main__":
    main()
