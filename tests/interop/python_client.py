#!/usr/bin/python3
"""python_client: the Python grpcio (1.51) client peer of the interop tests.

Runs named cases against a server of nprpc.interop.TestService
(tests/interop/interop.proto), the same cases as grpc_cpp_client.cc:

    python_client.py --target=127.0.0.1:PORT [--cases=a,b] [--stubs=DIR]
    PASS empty_unary
    FAIL ping_pong: response 2: payload of 8 bytes, want 9

Exits 0 when every case passed, 1 otherwise. Without --cases it runs them
all. --stubs as for python_server.py.

Threads: the cases run one after another on the main thread (grpcio's own
threads consume the request iterators of streaming calls).
"""

import argparse
import os
import queue
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--cases", default="")
    parser.add_argument(
        "--stubs",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_gen"),
    )
    return parser.parse_args()


ARGS = parse_args()
sys.path.insert(0, ARGS.stubs)

import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import interop_pb2  # noqa: E402
import interop_pb2_grpc  # noqa: E402

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
LARGE_BYTES = 4 * 1024 * 1024
CALL_TIMEOUT = 20.0  # seconds; every call has a deadline, no case hangs
REQUEST_SIZES = (27182, 8, 1828, 45904)
RESPONSE_SIZES = (31415, 9, 2653, 58979)
SPECIAL_MESSAGE = (
    "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n100% done"
)
CUSTOM_METADATA = (
    ("x-echo-initial", "test_initial_metadata_value"),
    ("x-echo-initial-bin", b"\x00\x01\xfe\xff"),
    ("x-echo-trailing", "test_trailing_metadata_value"),
    ("x-echo-trailing-bin", b"\x0a\x0b\x0a\x0b\x0a\x0b"),
    ("x-seen-only", "seen"),
)


class CaseFailed(Exception):
    pass


def expect(condition, reason):
    if not condition:
        raise CaseFailed(reason)


def describe(error):
    return "status %s %r" % (error.code().name, error.details())


def expect_code(call, code, what):
    """Calls call(); it must fail with code."""
    try:
        call()
    except grpc.RpcError as error:
        expect(error.code() == code, "%s: %s, want %s" % (what, describe(error), code.name))
        return error
    raise CaseFailed("%s: succeeded, want %s" % (what, code.name))


def pattern(size):
    return bytes((ord("a") + i % 26) for i in range(26)) * (size // 26) + bytes(
        (ord("a") + i % 26) for i in range(size % 26)
    )


def one_response_of(size):
    return interop_pb2.StreamingOutputCallRequest(
        response_parameters=[interop_pb2.ResponseParameters(size=size)], payload=bytes(size)
    )


class Pinger:
    """A request iterator fed one message at a time (for ping-pong)."""

    _DONE = object()

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, request):
        self._queue.put(request)

    def half_close(self):
        self._queue.put(self._DONE)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._DONE:
            raise StopIteration
        return item


class Cases:
    def __init__(self, channel):
        self.test = interop_pb2_grpc.TestServiceStub(channel)
        self.unimplemented = interop_pb2_grpc.UnimplementedServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def empty_unary(self):
        self.test.EmptyCall(interop_pb2.Empty(), timeout=CALL_TIMEOUT)

    def large_unary(self):
        request = interop_pb2.SimpleRequest(payload=pattern(LARGE_BYTES))
        response = self.test.UnaryCall(request, timeout=CALL_TIMEOUT)
        expect(response.payload == request.payload,
               "echo: payload of %d bytes differs" % len(response.payload))
        request = interop_pb2.SimpleRequest(response_size=LARGE_BYTES, payload=bytes(271828))
        response = self.test.UnaryCall(request, timeout=CALL_TIMEOUT)
        expect(len(response.payload) == LARGE_BYTES,
               "response_size: payload of %d bytes, want %d" % (len(response.payload),
                                                                LARGE_BYTES))

    def client_streaming(self):
        for what, sizes in (("stream", REQUEST_SIZES), ("empty stream", ())):
            requests = [interop_pb2.StreamingInputCallRequest(payload=bytes(s)) for s in sizes]
            response = self.test.StreamingInputCall(iter(requests), timeout=CALL_TIMEOUT)
            expect(
                response.aggregated_payload_size == sum(sizes)
                and response.message_count == len(sizes),
                "%s: server counted %d messages of %d bytes, want %d of %d"
                % (what, response.message_count, response.aggregated_payload_size, len(sizes),
                   sum(sizes)))

    def server_streaming(self):
        for what, sizes in (("stream", RESPONSE_SIZES), ("zero responses", ())):
            request = interop_pb2.StreamingOutputCallRequest(
                response_parameters=[interop_pb2.ResponseParameters(size=s) for s in sizes])
            got = [len(r.payload) for r in self.test.StreamingOutputCall(request,
                                                                        timeout=CALL_TIMEOUT)]
            expect(got == list(sizes), "%s: response sizes %s, want %s" % (what, got,
                                                                           list(sizes)))

    def ping_pong(self):
        pinger = Pinger()
        responses = self.test.FullDuplexCall(pinger, timeout=CALL_TIMEOUT)
        try:
            for i, size in enumerate(RESPONSE_SIZES):
                request = one_response_of(size)
                request.payload = bytes(REQUEST_SIZES[i])
                pinger.send(request)
                response = next(responses)
                expect(len(response.payload) == size, "response %d: payload of %d bytes, want %d"
                       % (i, len(response.payload), size))
            pinger.half_close()
            expect(next(responses, None) is None, "a response after the last ping")
        finally:
            pinger.half_close()
            responses.cancel()
        expect(responses.code() == grpc.StatusCode.OK, "finish: %s" % responses.code())

    def empty_stream(self):
        responses = list(self.test.FullDuplexCall(iter(()), timeout=CALL_TIMEOUT))
        expect(responses == [], "%d responses to no request" % len(responses))

    def _expect_echoed(self, call, where):
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        for key, value in CUSTOM_METADATA:
            for prefix, got, place in (("x-echo-initial", initial, "initial"),
                                       ("x-echo-trailing", trailing, "trailing")):
                if key.startswith(prefix):
                    expect(key in got, "no %s in %s %s metadata" % (key, where, place))
                    expect(got[key] == value, "%s in %s %s metadata is %r, want %r"
                           % (key, where, place, got[key], value))

    def custom_metadata(self):
        request = interop_pb2.SimpleRequest(payload=b"hi")
        response, call = self.test.UnaryCall.with_call(request, metadata=CUSTOM_METADATA,
                                                       timeout=CALL_TIMEOUT)
        self._expect_echoed(call, "UnaryCall")
        for key, value in CUSTOM_METADATA:
            want = key.encode() + b"=" + (value if isinstance(value, bytes) else value.encode())
            expect(want in response.seen_metadata, "server did not see %r; saw %r"
                   % (want, list(response.seen_metadata)))
        pinger = Pinger()
        responses = self.test.FullDuplexCall(pinger, metadata=CUSTOM_METADATA,
                                             timeout=CALL_TIMEOUT)
        pinger.send(one_response_of(10))
        next(responses)
        pinger.half_close()
        for _ in responses:
            pass
        expect(responses.code() == grpc.StatusCode.OK, "FullDuplexCall: %s" % responses.code())
        self._expect_echoed(responses, "FullDuplexCall")

    def _unary_with_status(self, code, message):
        request = interop_pb2.SimpleRequest(
            response_status=interop_pb2.EchoStatus(code=code.value[0], message=message))
        error = expect_code(lambda: self.test.UnaryCall(request, timeout=CALL_TIMEOUT), code,
                            "UnaryCall code %d" % code.value[0])
        expect(error.details() == message, "UnaryCall code %d: message %r, want %r"
               % (code.value[0], error.details(), message))

    def status_code_and_message(self):
        for code in grpc.StatusCode:
            if code != grpc.StatusCode.OK:
                self._unary_with_status(code, "status %d \u00fcnic\u00f8de" % code.value[0])
        request = interop_pb2.StreamingOutputCallRequest(
            response_status=interop_pb2.EchoStatus(code=2, message="test status message"))
        responses = self.test.FullDuplexCall(iter([request]), timeout=CALL_TIMEOUT)
        error = expect_code(lambda: list(responses), grpc.StatusCode.UNKNOWN, "FullDuplexCall")
        expect(error.details() == "test status message",
               "FullDuplexCall: message %r" % error.details())

    def special_status_message(self):
        self._unary_with_status(grpc.StatusCode.UNKNOWN, SPECIAL_MESSAGE)

    def unimplemented_method(self):
        expect_code(lambda: self.test.UnimplementedCall(interop_pb2.Empty(),
                                                        timeout=CALL_TIMEOUT),
                    grpc.StatusCode.UNIMPLEMENTED, "TestService/UnimplementedCall")

    def unimplemented_service(self):
        expect_code(lambda: self.unimplemented.UnimplementedCall(interop_pb2.Empty(),
                                                                 timeout=CALL_TIMEOUT),
                    grpc.StatusCode.UNIMPLEMENTED, "UnimplementedService/UnimplementedCall")

    def timeout_on_sleeping_server(self):
        start = time.monotonic()
        expect_code(lambda: self.test.UnaryCall(interop_pb2.SimpleRequest(sleep_ms=10000),
                                                timeout=0.2),
                    grpc.StatusCode.DEADLINE_EXCEEDED, "UnaryCall sleeping 10 s")
        expect(time.monotonic() - start < 5,
               "the deadline was only noticed when the server answered")

    def cancel_after_begin(self):
        pinger = Pinger()
        future = self.test.StreamingInputCall.future(pinger, timeout=CALL_TIMEOUT)
        future.cancel()
        pinger.half_close()
        expect(future.cancelled(), "the call was not cancelled")
        expect(future.code() == grpc.StatusCode.CANCELLED, "status %s" % future.code())

    def cancel_after_first_response(self):
        pinger = Pinger()
        responses = self.test.FullDuplexCall(pinger, timeout=CALL_TIMEOUT)
        pinger.send(one_response_of(31415))
        next(responses)
        responses.cancel()
        pinger.half_close()
        expect(responses.code() == grpc.StatusCode.CANCELLED, "status %s" % responses.code())

    def client_compressed_unary(self):
        request = interop_pb2.SimpleRequest(payload=pattern(256 * 1024), expect_compressed=True)
        response = self.test.UnaryCall(request, compression=grpc.Compression.Gzip,
                                       timeout=CALL_TIMEOUT)
        expect(response.payload == request.payload, "the echoed payload differs")

    def server_compressed_unary(self):
        request = interop_pb2.SimpleRequest(response_size=256 * 1024, compress_response=True)
        response = self.test.UnaryCall(request, timeout=CALL_TIMEOUT)
        expect(len(response.payload) == 256 * 1024,
               "payload of %d bytes, want %d" % (len(response.payload), 256 * 1024))

    def health_check(self):
        for service in ("", "nprpc.interop.TestService"):
            response = self.health.Check(health_pb2.HealthCheckRequest(service=service),
                                         timeout=CALL_TIMEOUT)
            expect(response.status == health_pb2.HealthCheckResponse.SERVING,
                   "Check %r: status %d, want SERVING" % (service, response.status))
        expect_code(lambda: self.health.Check(
            health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT),
                    grpc.StatusCode.NOT_FOUND, "Check 'no.such.Service'")


# In the order they run without --cases.
CASE_NAMES = (
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
    "empty_stream", "custom_metadata", "status_code_and_message", "special_status_message",
    "unimplemented_method", "unimplemented_service", "timeout_on_sleeping_server",
    "cancel_after_begin", "cancel_after_first_response", "client_compressed_unary",
    "server_compressed_unary", "health_check",
)


def main():
    names = [n for n in ARGS.cases.split(",") if n] or list(CASE_NAMES)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    failed = 0
    with grpc.insecure_channel(ARGS.target, options=options) as channel:
        cases = Cases(channel)
        for name in names:
            try:
                if name not in CASE_NAMES:
                    raise CaseFailed("no such case")
                getattr(cases, name)()
                print("PASS %s" % name, flush=True)
            except CaseFailed as failure:
                failed += 1
                print("FAIL %s: %s" % (name, failure), flush=True)
            except grpc.RpcError as error:
                failed += 1
                print("FAIL %s: %s" % (name, describe(error)), flush=True)
            except StopIteration:
                failed += 1
                print("FAIL %s: the stream ended early" % name, flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
