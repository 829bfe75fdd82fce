"""proto_cc_library: C++ code generated from .proto files by the system protoc.

Bazel 4.2.3's native proto_library/cc_proto_library need a protobuf toolchain
that this offline workspace does not have, so this macro runs
@com_google_protobuf//:protoc (a wrapper around /usr/bin/protoc) from a
genrule and wraps the outputs in a cc_library.

    load("//tools:proto.bzl", "proto_cc_library")

    proto_cc_library(
        name = "rpc_meta_proto",
        srcs = ["rpc_meta.proto"],
    )

    proto_cc_library(
        name = "thing_proto",
        srcs = ["thing.proto"],                 # import "proto/rpc_meta.proto";
        deps = ["//proto:rpc_meta_proto"],
    )

Conventions:
  - Import paths are workspace-relative: a file at proto/rpc_meta.proto is
    imported as "proto/rpc_meta.proto" and its generated header is included
    as "proto/rpc_meta.pb.h" (Bazel puts bazel-bin on the include path).
  - protoc runs from the execroot with `-I.`; well-known types
    (google/protobuf/*.proto) come from protoc's own default path.
  - `deps` name other proto_cc_library targets, spelled as full labels
    ("//pkg:name" or ":name", never the "//pkg" shorthand): the macro reaches
    their .proto files through the `<dep>_protos` filegroup it declares for
    every target, so imports resolve transitively.

Targets declared for name = "x":
  x_protos   filegroup: the .proto files of x and, transitively, of its deps.
  x_genproto genrule: runs protoc, produces <src>.pb.h / <src>.pb.cc.
  x          cc_library over the generated files, on @com_google_protobuf.

To add a protoc plugin later, extend _protoc_command() with the plugin's
--plugin/--<name>_out flags and _generated_files() with its outputs.
"""

def _strip_proto(src):
    if not src.endswith(".proto"):
        fail("proto_cc_library srcs must end in .proto: %s" % src)
    return src[:-len(".proto")]

def _generated_files(srcs):
    """The files protoc --cpp_out writes for srcs, relative to the package."""
    hdrs = [_strip_proto(s) + ".pb.h" for s in srcs]
    cc = [_strip_proto(s) + ".pb.cc" for s in srcs]
    return hdrs, cc

def _protoc_command(srcs):
    """The genrule command: one protoc run over srcs, C++ out to bazel-bin."""
    return " ".join([
        "$(location @com_google_protobuf//:protoc)",
        "-I.",
        "--cpp_out=$(GENDIR)",
    ] + ["$(location %s)" % s for s in srcs])

def proto_cc_library(name, srcs, deps = [], visibility = None, testonly = False, **kwargs):
    """C++ library generated from srcs by protoc.

    Args:
      name: the cc_library's name; also the prefix of the helper targets.
      srcs: .proto files of this package.
      deps: other proto_cc_library targets whose .proto files srcs import.
      visibility: applies to every declared target.
      testonly: applies to every declared target.
      **kwargs: extra cc_library attributes (copts, defines, ...).
    """
    proto_deps = [d + "_protos" for d in deps]
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + proto_deps,
        visibility = visibility,
        testonly = testonly,
    )
    hdrs, cc = _generated_files(srcs)
    native.genrule(
        name = name + "_genproto",
        srcs = srcs + proto_deps,
        outs = hdrs + cc,
        cmd = _protoc_command(srcs),
        tools = ["@com_google_protobuf//:protoc"],
        message = "protoc %s" % " ".join(srcs),
        visibility = ["//visibility:private"],
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = cc,
        hdrs = hdrs,
        deps = deps + ["@com_google_protobuf//:protobuf"],
        visibility = visibility,
        testonly = testonly,
        **kwargs
    )
