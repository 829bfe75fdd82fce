#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/corpus/tls_record_fuzz/ (run from the repo root).

ClientHellos are made by Python's ssl module over memory BIOs (TLS 1.3 and
1.2, with and without SNI and ALPN); the rest are hand-made: plaintext,
partial and bad records, garbage after a ClientHello, and inputs for the
target's 0xFF mode (records sent after a real handshake). Rerunning rewrites
the same kinds of files (ClientHellos carry random bytes, so not the same
bytes).
"""
import os
import ssl

ROOT = "tests/fuzz/corpus/tls_record_fuzz"


def client_hello(version=None, sni=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def record(content_type, payload, version=b"\x03\x03"):
    return bytes([content_type]) + version + len(payload).to_bytes(2, "big") + payload


def main():
    os.makedirs(ROOT, exist_ok=True)
    hello13 = client_hello(sni="localhost", alpn=["h2", "http/1.1"])
    hello12 = client_hello(version=ssl.TLSVersion.TLSv1_2)
    seeds = {
        "hello_tls13": hello13,
        "hello_tls12": hello12,
        "hello_no_sni": client_hello(),
        "hello_truncated": hello13[: len(hello13) // 2],
        "hello_header_only": hello13[:5],
        "hello_then_garbage": hello13 + b"\x17" * 64,
        "hello_then_alert": hello13 + record(21, b"\x02\x28"),
        "hello_twice": hello13 + hello13,
        "record_huge_length": b"\x16\x03\x01\xff\xff" + b"\x01" * 32,
        "record_empty": b"\x16\x03\x01\x00\x00",
        "record_bad_version": b"\x16\x09\x09\x00\x04\x01\x00\x00\x00",
        "plaintext_baidu_std": b"PRPC\x00\x00\x00\x05\x00\x00\x00\x00hello",
        "plaintext_http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "plaintext_h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "after_handshake_garbage": b"\xff" + b"\x17\x03\x03\x00\x10" + b"\x00" * 16,
        "after_handshake_alert": b"\xff" + record(21, b"\x01\x00"),
        "after_handshake_renegotiate": b"\xff" + hello12,
        "after_handshake_nothing": b"\xff",
        "empty": b"",
    }
    for name, data in seeds.items():
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
