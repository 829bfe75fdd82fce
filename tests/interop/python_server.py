#!/usr/bin/python3
"""python_server: the Python grpcio (1.51) peer of the interop tests.

Serves nprpc.interop.TestService (tests/interop/interop.proto) with every
knob, and grpc.health.v1.Health, as grpc_cpp_server.cc does:

    python_server.py --port=0 [--stubs=DIR]

Prints "listening on 127.0.0.1:PORT" once it accepts (port 0 picks one),
serves until SIGINT/SIGTERM. --stubs is where protoc wrote interop_pb2.py,
health_pb2.py and their _grpc modules (default: py_gen next to this file,
where the :python_stubs genrule puts them).

Threads: grpcio runs the handlers on its thread pool, many at once; they
share nothing.
"""

import argparse
import concurrent.futures
import os
import signal
import sys
import threading
import time

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Handlers that block (sleeps, Watch) hold a thread each.
WORKERS = 32


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
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

STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def echo_metadata(context):
    """Echoes x-echo-initial* as initial, x-echo-trailing* as trailing metadata."""
    initial = []
    trailing = []
    for key, value in context.invocation_metadata():
        if key.startswith("x-echo-initial"):
            initial.append((key, value))
        if key.startswith("x-echo-trailing"):
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def seen_metadata(context):
    """b"key=value" for each request metadata key that starts with "x-", sorted."""
    seen = []
    for key, value in context.invocation_metadata():
        if key.startswith("x-"):
            raw = value if isinstance(value, bytes) else value.encode()
            seen.append(key.encode() + b"=" + raw)
    return sorted(seen)


def sleep_unless_cancelled(context, ms):
    """Sleeps ms milliseconds or until the call ends; False if it ended."""
    end = time.monotonic() + ms / 1000.0
    while time.monotonic() < end:
        if not context.is_active():
            return False
        time.sleep(min(0.005, max(0.0, end - time.monotonic())))
    return context.is_active()


def set_status(context, status):
    """Ends the call with status (an EchoStatus) instead of a response."""
    context.set_code(STATUS_CODES[status.code])
    context.set_details(status.message)


def answer(context, request):
    """The responses one StreamingOutputCallRequest asks for."""
    for parameters in request.response_parameters:
        if parameters.interval_ms > 0 and not sleep_unless_cancelled(
            context, parameters.interval_ms
        ):
            return
        yield interop_pb2.StreamingOutputCallResponse(payload=bytes(parameters.size))


class TestService(interop_pb2_grpc.TestServiceServicer):
    """Every method but UnimplementedCall (the base class answers UNIMPLEMENTED)."""

    def EmptyCall(self, request, context):
        echo_metadata(context)
        return interop_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        if request.sleep_ms > 0 and not sleep_unless_cancelled(context, request.sleep_ms):
            context.set_code(grpc.StatusCode.CANCELLED)
            return interop_pb2.SimpleResponse()
        if request.response_status.code != 0:
            set_status(context, request.response_status)
            return interop_pb2.SimpleResponse()
        if request.compress_response:
            context.set_compression(grpc.Compression.Gzip)
        if request.response_size > 0:
            payload = bytes(request.response_size)
        else:
            payload = request.payload
        return interop_pb2.SimpleResponse(payload=payload, seen_metadata=seen_metadata(context))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        yield from answer(context, request)
        if request.response_status.code != 0:
            set_status(context, request.response_status)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = 0
        count = 0
        for request in request_iterator:
            total += len(request.payload)
            count += 1
        return interop_pb2.StreamingInputCallResponse(
            aggregated_payload_size=total, message_count=count
        )

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            yield from answer(context, request)
            if request.response_status.code != 0:
                set_status(context, request.response_status)
                return


KNOWN_SERVICES = ("", "nprpc.interop.TestService")


class Health(health_pb2_grpc.HealthServicer):
    """The server ("") and TestService are SERVING; others are unknown."""

    def Check(self, request, context):
        if request.service not in KNOWN_SERVICES:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("unknown service")
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def Watch(self, request, context):
        if request.service in KNOWN_SERVICES:
            status = health_pb2.HealthCheckResponse.SERVING
        else:
            status = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        yield health_pb2.HealthCheckResponse(status=status)
        # The status never changes: hold the stream until the client leaves.
        ended = threading.Event()
        if context.add_callback(ended.set):
            ended.wait()


def main():
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS), options=options
    )
    interop_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:%d" % ARGS.port)
    if port == 0:
        print("cannot serve on port %d" % ARGS.port, file=sys.stderr)
        return 1
    server.start()
    print("listening on 127.0.0.1:%d" % port, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
