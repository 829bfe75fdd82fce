#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/ (run from the repo root).

The captured brpc frames (tests/data/baidu_std/*/{request,response}.bin) are
copied in as they are; the rest is made here: edge cases of the 12-byte
header, requests to every method of the fuzz server, pipelined and
concatenated frames, and LinkBuffer op sequences. Rerunning rewrites the same
files; crashers found by tools/fuzz.sh are added next to them by hand.
"""
import glob
import os
import random
import shutil
import struct

ROOT = "tests/fuzz/corpus"


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def request_meta(service, method, cid, attachment=0, timeout_ms=None, compress=0, user_fields=(),
                 checksum=None):
    req = field(1, 2, service.encode()) + field(2, 2, method.encode())
    if timeout_ms is not None:
        req += field(8, 0, timeout_ms)
    meta = field(1, 2, req) + field(3, 0, compress) + field(4, 0, cid)
    if attachment:
        meta += field(5, 0, attachment)
    for k, v in user_fields:
        meta += field(9, 2, field(1, 2, k.encode()) + field(2, 2, v.encode()))
    if checksum is not None:
        meta += field(11, 0, 1) + field(12, 2, checksum)
    return meta


def echo_request(message, code=None):
    out = field(1, 2, message.encode())
    if code is not None:
        out += field(2, 0, code)
    return out


def frame(meta, payload=b"", attachment=b""):
    body = meta + payload + attachment
    return b"PRPC" + struct.pack(">II", len(body), len(meta)) + body


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def main():
    for path in sorted(glob.glob("tests/data/baidu_std/*/*.bin")):
        case = os.path.basename(os.path.dirname(path))
        name = "%s.%s" % (case, os.path.basename(path))
        for target in ("frame_decoder_fuzz", "server_dispatch_fuzz"):
            os.makedirs(os.path.join(ROOT, target), exist_ok=True)
            shutil.copyfile(path, os.path.join(ROOT, target, name))

    basic = open("tests/data/baidu_std/echo_basic/request.bin", "rb").read()
    edge = {
        "empty": b"",
        "magic_prefix": b"PR",
        "magic_only": b"PRPC",
        "bad_magic_http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad_magic_late": b"PRPX" + b"\0" * 8,
        "announces_4gib": b"PRPC\xff\xff\xff\xff\x00\x00\x00\x10",
        "meta_over_body": b"PRPC\x00\x00\x00\x04\x00\x00\x00\x08abcd",
        "empty_body": b"PRPC\x00\x00\x00\x00\x00\x00\x00\x00",
        "unparsable_meta": b"PRPC\x00\x00\x00\x04\x00\x00\x00\x04\xff\xff\xff\xff",
        "no_request_no_response": frame(field(4, 0, 7)),
        "both_request_and_response": frame(
            request_meta("a.B", "C", 1) + field(2, 2, field(1, 0, 0))),
        "negative_attachment": frame(request_meta("a.B", "C", 1) + field(5, 0, -1)),
        "attachment_too_large": frame(request_meta("a.B", "C", 1, attachment=100), b"x"),
        "missing_method_name": frame(field(1, 2, field(1, 2, b"a.B")) + field(4, 0, 1)),
        "two_frames": basic + basic,
        "frame_then_garbage": basic + b"garbage!",
        "frame_then_partial": basic + basic[:20],
    }
    for name, data in edge.items():
        for target in ("frame_decoder_fuzz", "server_dispatch_fuzz"):
            write(target, name, data)

    # Requests to each method of the fuzz server.
    calls = {
        "echo": frame(request_meta("example.EchoService", "Echo", 1), echo_request("hi")),
        "fail": frame(request_meta("example.EchoService", "Fail", 2), echo_request("no", 4242)),
        "missing": frame(request_meta("example.EchoService", "Missing", 3), echo_request("m")),
        "inline_attachment": frame(
            request_meta("fuzz.FuzzService", "Inline", 4, attachment=5, user_fields=[("k", "v")]),
            echo_request("in", 1), b"attch"),
        "inline_gzip": frame(request_meta("fuzz.FuzzService", "Inline", 5), echo_request("g" * 64, 2)),
        "inline_zlib": frame(request_meta("fuzz.FuzzService", "Inline", 6), echo_request("z" * 64, 3)),
        "drop": frame(request_meta("fuzz.FuzzService", "Drop", 7), echo_request("d")),
        "twice": frame(request_meta("fuzz.FuzzService", "Twice", 8), echo_request("t")),
        "status": frame(request_meta("fuzz.FuzzService", "Status", 9), echo_request("s", 5)),
        "deadline_1ms": frame(request_meta("example.EchoService", "Echo", 10, timeout_ms=1),
                              echo_request("late")),
        "bad_payload": frame(request_meta("example.EchoService", "Echo", 11), b"\xff\xff\xff"),
        "bad_gzip": frame(request_meta("example.EchoService", "Echo", 12, compress=2), b"notgzip"),
        "bad_checksum": frame(request_meta("example.EchoService", "Echo", 13, checksum=b"\0\0\0\0"),
                              echo_request("c")),
        "unknown_service": frame(request_meta("no.Such", "Echo", 14), echo_request("u")),
        "response_frame": frame(field(2, 2, field(1, 0, 0)) + field(4, 0, 15)),
    }
    for name, data in calls.items():
        write("server_dispatch_fuzz", "call_" + name, data)
        write("frame_decoder_fuzz", "call_" + name, data)
    pipelined = b"".join(
        frame(request_meta("example.EchoService", "Echo", 100 + i), echo_request("p%d" % i))
        for i in range(16))
    write("server_dispatch_fuzz", "pipelined_16", pipelined)
    mixed = b"".join(calls[k] for k in ("echo", "drop", "twice", "inline_gzip", "status", "fail"))
    write("server_dispatch_fuzz", "mixed_methods", mixed)
    write("server_dispatch_fuzz", "pipelined_then_garbage", pipelined + b"XXXXXXXXXXXX")

    # LinkBuffer op sequences: every op on every slot, then random ones.
    rng = random.Random(8)
    every_op = bytearray()
    for op in range(20):
        for slot in range(3):
            every_op += bytes([op, slot, 0, rng.randrange(256), rng.randrange(256),
                               rng.randrange(256)])
    write("link_buffer_fuzz", "every_op", bytes(every_op))
    views = bytes([0, 0, 0, 200, 1, 0, 0, 0x10, 0x40, 5, 0, 0, 30, 6, 0, 0, 10, 8, 0, 0, 40, 12,
                   0, 0, 20, 14, 1, 1, 13, 0, 0, 15, 0, 0, 19, 0, 0])
    write("link_buffer_fuzz", "views_across_slice_append", views)
    malloc = bytes([3, 0, 0, 100, 0, 0, 0, 50, 3, 0, 0, 60, 4, 0, 0, 120, 18, 0, 0, 0xff, 0xff,
                    19, 1, 0])
    write("link_buffer_fuzz", "malloc_pending_then_io", malloc)
    external = bytes([2, 0, 0, 0x00, 0x10, 13, 0, 0, 12, 0, 1, 250, 17, 0, 0, 16, 1, 0, 2, 0,
                      0, 0x20, 8, 2, 0, 251])
    write("link_buffer_fuzz", "external_memory_shared", external)
    for i in range(4):
        write("link_buffer_fuzz", "random_%d" % i, bytes(rng.randrange(256) for _ in range(512)))

    # HTTP/1.1 requests: every route and framing the decoder knows, and the
    # errors it answers.
    def post(path, body, extra=b""):
        return (b"POST " + path + b" HTTP/1.1\r\nHost: h\r\n" + extra + b"Content-Length: " +
                str(len(body)).encode() + b"\r\n\r\n" + body)
    echo = post(b"/example.EchoService/Echo", b'{"message":"hi"}',
                b"Content-Type: application/json\r\n")
    http = {
        "get": b"GET /status?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
        "head": b"HEAD /health HTTP/1.1\r\n\r\n",
        "post_json": echo,
        "pipelined": echo * 4 + b"GET / HTTP/1.1\r\n\r\n",
        "chunked": (b"POST /example.EchoService/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\n{\"mes\r\n10;ext=1\r\nsage\":\"chunked\"}\r\n0\r\nTrailer: t\r\n\r\n"),
        "http10": b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "http10_keep_alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2,
        "connection_close": b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "leading_crlf": b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "absolute_target": b"GET http://h:80/a/b?q#f HTTP/1.1\r\n\r\n",
        "options_star": b"OPTIONS * HTTP/1.1\r\n\r\n",
        "upgrade": b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        "connect": b"CONNECT h:443 HTTP/1.1\r\n\r\n",
        "folded_header": b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n",
        "garbage_line": b"GET /\x01 junk\r\n\r\n",
        "bad_method": b"BREW /pot HTTP/1.1\r\n\r\n",
        "http2_version": b"GET / HTTP/2.0\r\n\r\n",
        "h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "big_content_length": b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        "length_and_chunked": b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "two_lengths": b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "chunked_too_big": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                            b"200\r\n" + b"a" * 512 + b"\r\n") * 3,
        "tiny_chunks": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        b"1;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nx\r\n" * 40 + b"0\r\n\r\n"),
        "long_header": b"GET / HTTP/1.1\r\nX: " + b"a" * 600 + b"\r\n\r\n",
        "many_headers": b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 80 + b"\r\n",
    }
    for name, data in http.items():
        write("http_request_decoder_fuzz", name, data)
    # The same through the server (server_dispatch_fuzz's HTTP mode).
    calls = [post(b"/fuzz.FuzzService/" + m, b'{"message":"m","code":3}') for m in
             (b"Inline", b"Drop", b"Twice", b"Status")]
    calls.append(post(b"/example.EchoService/Echo", b'{"message":"e"}',
                      b"X-Timeout-Ms: 1\r\ntraceparent: 00-0000000000000000000000000000002a-"
                      b"0000000000000007-01\r\n"))
    write("server_dispatch_fuzz", "http_calls", b"".join(calls))
    write("server_dispatch_fuzz", "http_pipelined_echo", echo * 12)
    write("server_dispatch_fuzz", "http_head_get_delete",
          b"HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nDELETE /z HTTP/1.1\r\n\r\n")
    write("server_dispatch_fuzz", "http_bad_json_then_garbage",
          post(b"/example.EchoService/Echo", b'{"message":') + b"GET /\x01 x\r\n\r\n")
    write("server_dispatch_fuzz", "http_binary_and_close",
          post(b"/example.EchoService/Echo", b"\x0a\x01x", b"Content-Type: application/x-protobuf\r\n")
          + post(b"/example.EchoService/Echo", b'{"message":"c"}', b"Connection: close\r\n"))
    write("server_dispatch_fuzz", "http_chunked", http["chunked"])


if __name__ == "__main__":
    main()
