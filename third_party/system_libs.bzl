"""System libraries from Debian -dev packages, under their upstream names.

Each repository below is generated from pkg-config at fetch time: the link
flags of every target come from `pkg-config --libs`, so nothing here repeats
a library list by hand. Headers live in /usr/include and need no declaration.

Moving to upstream archives (http_archive or bzlmod) replaces this file only:
the labels (@com_google_protobuf//:protobuf, @com_google_absl//absl/status,
@com_google_googletest//:gtest_main, ...) are the upstream ones.
"""

def _pkg_config(ctx, flag, modules):
    result = ctx.execute(["pkg-config", flag] + modules)
    if result.return_code != 0:
        fail("pkg-config %s %s failed (run tools/setup.sh): %s" %
             (flag, " ".join(modules), result.stderr))
    return [f for f in result.stdout.strip().replace("\n", " ").split(" ") if f]

def _system_library_impl(ctx):
    packages = {}
    for label, spec in ctx.attr.targets.items():
        package, _, name = label.rpartition(":")
        modules = [m for m in spec.split(" ") if m and not m.startswith("-")]
        raw = [m for m in spec.split(" ") if m.startswith("-")]
        linkopts = raw
        copts = []
        if modules:
            linkopts = _pkg_config(ctx, "--libs", modules) + raw
            copts = [f for f in _pkg_config(ctx, "--cflags", modules) if not f.startswith("-I")]
        packages.setdefault(package, []).append(
            'cc_library(\n    name = "%s",\n    copts = %s,\n    linkopts = %s,\n)\n' %
            (name, repr(copts), repr(linkopts)),
        )
    for package, rules in packages.items():
        build = 'package(default_visibility = ["//visibility:public"])\n\n'
        build += ctx.attr.preamble.get(package, "")
        build += "\n".join(rules)
        ctx.file((package + "/" if package else "") + "BUILD.bazel", build)
    for name, path in ctx.attr.binaries.items():
        ctx.symlink(path, name + ".bin")
        ctx.file(name + ".sh", "#!/bin/sh\nexec %s \"$@\"\n" % path, executable = True)
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        # "package:name" -> "pkg-config modules and/or raw -l flags"
        "targets": attr.string_dict(mandatory = True),
        # Extra BUILD text prepended to a package (e.g. binaries).
        "preamble": attr.string_dict(),
        # Executables from the system exposed as <name>.sh wrappers.
        "binaries": attr.string_dict(),
    },
    local = True,
)

_ABSL = {
    "absl/base:base": "absl_base",
    "absl/base:core_headers": "absl_core_headers",
    "absl/cleanup:cleanup": "absl_cleanup",
    "absl/container:flat_hash_map": "absl_flat_hash_map",
    "absl/container:flat_hash_set": "absl_flat_hash_set",
    "absl/container:inlined_vector": "absl_inlined_vector",
    "absl/container:node_hash_map": "absl_node_hash_map",
    "absl/debugging:failure_signal_handler": "absl_failure_signal_handler",
    "absl/debugging:symbolize": "absl_symbolize",
    "absl/flags:flag": "absl_flags",
    "absl/flags:parse": "absl_flags_parse absl_flags_usage",
    "absl/functional:any_invocable": "absl_any_invocable",
    "absl/functional:function_ref": "absl_function_ref",
    "absl/hash:hash": "absl_hash",
    "absl/memory:memory": "absl_memory",
    "absl/random:random": "absl_random_random",
    "absl/status:status": "absl_status",
    "absl/status:statusor": "absl_statusor",
    "absl/strings:strings": "absl_strings",
    "absl/strings:str_format": "absl_str_format",
    "absl/synchronization:synchronization": "absl_synchronization",
    "absl/time:time": "absl_time",
    "absl/types:optional": "absl_optional",
    "absl/types:span": "absl_span",
    "absl/types:variant": "absl_variant",
}

_PROTOC_PREAMBLE = """sh_binary(
    name = "protoc",
    srcs = ["protoc.sh"],
)

"""

def system_libraries():
    """Declares every system-library repository the project uses."""
    system_library(
        name = "com_google_absl",
        targets = _ABSL,
    )
    system_library(
        name = "com_google_protobuf",
        targets = {
            ":protobuf": "protobuf",
            ":protobuf_lite": "protobuf-lite",
            ":protoc_lib": "protobuf -lprotoc",
        },
        preamble = {"": _PROTOC_PREAMBLE},
        binaries = {"protoc": "/usr/bin/protoc"},
    )
    system_library(
        name = "com_google_googletest",
        targets = {
            ":gtest": "gtest",
            ":gtest_main": "gtest_main",
            ":gmock": "gmock",
            ":gmock_main": "gmock_main",
        },
    )
    system_library(
        name = "com_github_google_benchmark",
        targets = {
            ":benchmark": "benchmark",
            ":benchmark_main": "benchmark -lbenchmark_main",
        },
    )
    system_library(
        name = "com_github_google_snappy",
        targets = {":snappy": "snappy"},
    )
    system_library(
        name = "zlib",
        targets = {":zlib": "zlib"},
    )
    # Node.js's HTTP/1.1 parser (Debian's libhttp-parser-dev, no pkg-config
    # module), under rpc/internal/http_protocol.
    system_library(
        name = "com_github_nodejs_http_parser",
        targets = {":http_parser": "-lhttp_parser"},
    )
    # HTTP/2 framing, HPACK and flow control (Debian's libnghttp2-dev), under
    # the gRPC protocol (rpc/internal/http2_*).
    system_library(
        name = "org_nghttp2",
        targets = {":nghttp2": "libnghttp2"},
    )
    # OpenSSL 3 (Debian's libssl-dev), for TLS in netpoll.
    system_library(
        name = "org_openssl",
        targets = {":ssl": "libssl libcrypto"},
    )
    # gRPC C++ (Debian's libgrpc++-dev), for the benchmark baseline in bench/
    # only; its protoc plugin is /usr/bin/grpc_cpp_plugin (protobuf-compiler-grpc).
    system_library(
        name = "com_github_grpc_grpc",
        targets = {":grpc++": "grpc++"},
    )
