"""nprpc_cc_library: protobuf messages plus nprpc stubs and service bases.

    load("//codegen:nprpc.bzl", "nprpc_cc_library")

    nprpc_cc_library(
        name = "greeter_nprpc",
        srcs = ["greeter.proto"],       # may import other packages' protos
        deps = ["//proto:echo_proto"],  # proto_cc_library or nprpc_cc_library targets
        generate_mock = True,           # also :greeter_nprpc_mock (gMock stubs)
    )

One protoc run writes, per foo.proto, protoc's foo.pb.h/.cc and
protoc-gen-nprpc's foo.nprpc.h/.cc (and foo_mock.nprpc.h); the target is one
cc_library over them, depending on the nprpc runtime. Include
"pkg/foo.nprpc.h" (workspace-relative; bazel-bin is on the include path).

From another workspace (examples/external/): load
"@netpoll_rpc//codegen:nprpc.bzl" after netpoll_rpc_dependencies()
(third_party/dependencies.bzl) in its WORKSPACE; the runtime labels resolve
to @netpoll_rpc, the protos are the calling workspace's.

Built on tools/proto.bzl's proto_cc_library (its `plugins` argument), so the
same conventions hold: import paths are workspace-relative, `deps` are full
labels of proto_cc_library or nprpc_cc_library targets, and the helper
targets <name>_protos and <name>_genproto are declared too.
"""

load("//tools:proto.bzl", "proto_cc_library")

# What generated .nprpc.h/.cc files include.
# Label(): this repository's targets also when the macro is loaded from
# another workspace (@netpoll_rpc//codegen:nprpc.bzl).
NPRPC_GENERATED_DEPS = [
    Label("//rpc:method_handlers"),
    Label("//rpc:stream_handlers"),
    Label("//rpc:stub_core"),
    Label("//rpc:call_options"),
    Label("//rpc:channel"),
    Label("//rpc:client_streaming"),
    Label("//rpc:server_context"),
    Label("//rpc:server_streaming"),
    Label("//rpc:service"),
    Label("//rpc:stream_core"),
    Label("//rpc:task"),
    "@com_google_absl//absl/status",
    "@com_google_absl//absl/status:statusor",
    "@com_google_absl//absl/strings",
]

def nprpc_cc_library(
        name,
        srcs,
        deps = [],
        generate_mock = False,
        visibility = None,
        testonly = False,
        **kwargs):
    """C++ messages, stubs and service bases generated from srcs.

    Args:
      name: the cc_library; with generate_mock, also <name>_mock (testonly,
        the foo_mock.nprpc.h headers, on gMock).
      srcs: .proto files of this package (subfolders allowed).
      deps: proto_cc_library / nprpc_cc_library targets srcs import.
      generate_mock: also generate Mock<Service>Stub classes.
      visibility: applies to every declared target.
      testonly: applies to every declared target.
      **kwargs: extra cc_library attributes (copts, ...).
    """
    plugin = {
        "name": "nprpc",
        "tool": Label("//codegen:protoc-gen-nprpc"),
        "options": "generate_mock=true" if generate_mock else "",
        "hdr_suffixes": [".nprpc.h"],
        "src_suffixes": [".nprpc.cc"],
        "extra_suffixes": ["_mock.nprpc.h"] if generate_mock else [],
        "deps": NPRPC_GENERATED_DEPS,
    }
    proto_cc_library(
        name = name,
        srcs = srcs,
        deps = deps,
        plugins = [plugin],
        visibility = visibility,
        testonly = testonly,
        **kwargs
    )
    if generate_mock:
        native.cc_library(
            name = name + "_mock",
            hdrs = [s[:-len(".proto")] + "_mock.nprpc.h" for s in srcs],
            deps = [":" + name, "@com_google_googletest//:gmock"],
            visibility = visibility,
            testonly = True,
        )
