#!/usr/bin/env python3
"""Checks that cmake/sources.cmake lists the same files as the Bazel targets.

Bazel's BUILD files are the source of truth. For each CMake list below, this
asks `bazel query` for the srcs of the non-testonly cc_library/cc_binary
targets under the folders the list mirrors (new packages included; the
testing/ fixtures are testonly), and fails, naming the files, when
a file is in one and not the other. Headers are not compared: CMake installs
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

# CMake variable -> the Bazel query whose srcs it must list.
LISTS = {
    "NPRPC_NETPOLL_SOURCES": CC_RULES.format(pkgs="//netpoll/..."),
    "NPRPC_RUNTIME_SOURCES": CC_RULES.format(pkgs="//rpc/..."),
    "NPRPC_RUNTIME_PROTOS": "//proto:rpc_meta_proto_genproto",
    "NPRPC_PLUGIN_SOURCES": CC_RULES.format(pkgs="//codegen/..."),
}


def bazel_files(query):
    out = subprocess.run(
        ["bazel", "query", "--noshow_progress", "labels(srcs, %s)" % query],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    files = set()
    for label in out.split():
        package, _, name = label.lstrip("@").lstrip("/").partition(":")
        if name.endswith((".cc", ".proto")):  # headers in srcs are not compiled
            files.add("%s/%s" % (package, name))
    return files


def cmake_lists():
    text = open(SOURCES_CMAKE).read()
    lists = {}
    for name, body in re.findall(r"set\((\w+)\s+([^)]*)\)", text):
        lists[name] = set(line.strip() for line in body.split() if line.strip())
    return lists


def main():
    wanted = {name: bazel_files(query) for name, query in LISTS.items()}
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
