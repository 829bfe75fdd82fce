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
  - protoc runs from the execroot with the root of this target's repository
    on its path (`-I.` in the main workspace, `-Iexternal/<repo>` when the
    macro runs in an external repository) and the roots of the repositories
    of `deps` after it, so import paths and output paths stay
    repository-relative either way; well-known types (google/protobuf/*.proto)
    come from protoc's own default path.
  - `deps` name other proto_cc_library targets, spelled as full labels
    ("//pkg:name" or ":name", never the "//pkg" shorthand): the macro reaches
    their .proto files through the `<dep>_protos` filegroup it declares for
    every target, so imports resolve transitively.

Targets declared for name = "x":
  x_protos   filegroup: the .proto files of x and, transitively, of its deps.
  x_genproto genrule: runs protoc, produces <src>.pb.h / <src>.pb.cc.
  x          cc_library over the generated files, on @com_google_protobuf.

Plugins: `plugins` runs protoc plugins in the same protoc call (see
proto_cc_library's docstring); codegen/nprpc.bzl's nprpc_cc_library uses it
for protoc-gen-nprpc.
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

def _plugin_files(srcs, plugin, key):
    """The outputs plugin[key] (a list of suffixes) names for srcs."""
    return [_strip_proto(s) + suffix for s in srcs for suffix in plugin.get(key, [])]

def _repository_root(repository):
    """Where a repository's files are, relative to the execroot ("@x" -> external/x)."""
    name = repository.lstrip("@")
    return "external/" + name if name else ""

def _dep_repository(dep):
    """The repository ("@name", or "@" for the calling one) of a deps entry."""
    if type(dep) == "Label":
        return "@" + dep.workspace_name
    if dep.startswith("@"):
        return dep.split("//")[0]
    return native.repository_name()

def _protoc_command(srcs, deps, plugins = []):
    """The genrule command: one protoc run over srcs, C++ (and plugins) out to bazel-bin."""
    root = _repository_root(native.repository_name())
    out = "$(GENDIR)/" + root if root else "$(GENDIR)"
    includes = [root or "."]
    for dep in deps:
        dep_root = _repository_root(_dep_repository(dep)) or "."
        if dep_root not in includes:
            includes.append(dep_root)
    plugin_flags = []
    for p in plugins:
        plugin_flags.append("--plugin=protoc-gen-%s=$(location %s)" % (p["name"], p["tool"]))
        options = p.get("options", "")
        plugin_flags.append("--%s_out=%s%s" % (p["name"], options + ":" if options else "", out))
    return " ".join(
        ["$(location @com_google_protobuf//:protoc)"] +
        ["-I" + i for i in includes] +
        ["--cpp_out=" + out] +
        plugin_flags +
        ["$(location %s)" % s for s in srcs],
    )

def proto_cc_library(name, srcs, deps = [], visibility = None, testonly = False, plugins = [], **kwargs):
    """C++ library generated from srcs by protoc.

    Args:
      name: the cc_library's name; also the prefix of the helper targets.
      srcs: .proto files of this package.
      deps: other proto_cc_library targets whose .proto files srcs import.
      visibility: applies to every declared target.
      testonly: applies to every declared target.
      plugins: protoc plugins run in the same protoc call, each a dict:
        name: the plugin's <name> (--plugin=protoc-gen-<name>=, --<name>_out=);
        tool: the plugin binary's label;
        options: its parameter string ("" or absent: none);
        hdr_suffixes, src_suffixes: what it writes per .proto ("foo" +
          suffix), added to the cc_library's hdrs / srcs;
        extra_suffixes: outputs kept out of the cc_library (e.g. mocks);
        deps: cc_library deps of the code it generates.
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
    extra = []
    plugin_deps = []
    for p in plugins:
        hdrs = hdrs + _plugin_files(srcs, p, "hdr_suffixes")
        cc = cc + _plugin_files(srcs, p, "src_suffixes")
        extra = extra + _plugin_files(srcs, p, "extra_suffixes")
        plugin_deps = plugin_deps + [d for d in p.get("deps", []) if d not in plugin_deps]
    native.genrule(
        name = name + "_genproto",
        srcs = srcs + proto_deps,
        outs = hdrs + cc + extra,
        cmd = _protoc_command(srcs, deps, plugins),
        tools = ["@com_google_protobuf//:protoc"] + [p["tool"] for p in plugins],
        message = "protoc %s" % " ".join(srcs),
        visibility = ["//visibility:private"],
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = cc,
        hdrs = hdrs,
        deps = deps + [d for d in plugin_deps if d not in deps] + ["@com_google_protobuf//:protobuf"],
        visibility = visibility,
        testonly = testonly,
        **kwargs
    )
