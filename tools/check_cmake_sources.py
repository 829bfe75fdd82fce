#!/usr/bin/env python3
"""Checks that cmake/sources.cmake lists the same files as the Bazel targets.

Bazel's BUILD files are the source of truth. For each CMake list below, this
asks `bazel query` for the srcs of the non-testonly cc_library/cc_binary
targets under the folders the list mirrors (new packages included; the
testing/ fixtures are testonly) and, for the proto lists, for every .proto
of this workspace that protoc compiles for the runtime libraries (//netpoll/...
and //rpc/..., transitively; those run through protoc-gen-nprpc apart), and
fails, naming the files, when a file is in one and not the other. Headers are not compared: CMake installs
every header of netpoll/ and rpc/ (testing/ excluded).

    tools/check_cmake_sources.py           # exit 1 on any difference
    tools/check_cmake_sources.py --print   # the lists Bazel wants, as CMake
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES_CMAKE = os.path.join(ROOT, "cmake", "sources.cmake")
CC_RULES = 'kind("cc_(library|binary) rule", {pkgs}) except attr(testonly, 1, {pkgs})'

RUNTIME_RULES = CC_RULES.format(pkgs="//netpoll/... + //rpc/...")
# The protoc runs (tools/proto.bzl's <name>_genproto genrules) of this
# workspace that the runtime libraries depend on, transitively.
RUNTIME_PROTOC_OUTS = "labels(outs, kind(genrule, deps(%s)))" % RUNTIME_RULES

# CMake variable -> (Bazel query, which of its files the list must name).
# Sources: the srcs of the rules, .cc only (headers are not compiled).
# Protos: X.proto for every X.pb.cc protoc writes for the runtime, and, for
# the plugin list, every X.nprpc.cc protoc-gen-nprpc writes (nprpc_cc_library).
LISTS = {
    "NPRPC_NETPOLL_SOURCES": ("labels(srcs, %s)" % CC_RULES.format(pkgs="//netpoll/..."), ".cc"),
    "NPRPC_RUNTIME_SOURCES": ("labels(srcs, %s)" % CC_RULES.format(pkgs="//rpc/..."), ".cc"),
    "NPRPC_RUNTIME_PROTOS": (RUNTIME_PROTOC_OUTS, ".pb.cc"),
    "NPRPC_RUNTIME_NPRPC_PROTOS": (RUNTIME_PROTOC_OUTS, ".nprpc.cc"),
    "NPRPC_PLUGIN_SOURCES": ("labels(srcs, %s)" % CC_RULES.format(pkgs="//codegen/..."), ".cc"),
}

_query_cache = {}


def bazel_files(query, suffix):
    if query not in _query_cache:
        _query_cache[query] = subprocess.run(
            ["bazel", "query", "--noshow_progress", query],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    files = set()
    for label in _query_cache[query]:
        if not label.startswith("//"):  # this workspace's files only
            continue
        package, _, name = label.lstrip("/").partition(":")
        if not name.endswith(suffix):
            continue
        path = "%s/%s" % (package, name)
        if suffix != ".cc":  # a generated file -> the .proto it comes from
            path = path[:-len(suffix)] + ".proto"
        files.add(path)
    return files


def cmake_lists():
    text = open(SOURCES_CMAKE).read()
    lists = {}
    for name, body in re.findall(r"set\((\w+)\s+([^)]*)\)", text):
        lists[name] = set(line.strip() for line in body.split() if line.strip())
    return lists


def main():
    wanted = {name: bazel_files(*spec) for name, spec in LISTS.items()}
    if "--print" in sys.argv:
        for name, files in wanted.items():
            print("set(%s\n%s\n)\n" % (name, "\n".join("  " + f for f in sorted(files))))
        return 0
    have = cmake_lists()
    errors = []
    for name, files in wanted.items():
        listed = have.get(name, set())
        for f in sorted(files - listed):
            errors.append("%s: missing %s (in Bazel, not in CMake)" % (name, f))
        for f in sorted(listed - files):
            errors.append("%s: extra %s (in CMake, not in Bazel)" % (name, f))
    for e in errors:
        print("cmake/sources.cmake " + e, file=sys.stderr)
    if errors:
        print("fix: tools/check_cmake_sources.py --print shows the lists Bazel wants",
              file=sys.stderr)
        return 1
    print("cmake/sources.cmake matches the Bazel targets (%d files)" %
          sum(len(f) for f in wanted.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
