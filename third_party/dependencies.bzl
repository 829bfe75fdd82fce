"""netpoll_rpc_dependencies(): every repository netpoll-rpc's build needs.

Another workspace using netpoll-rpc (examples/external/WORKSPACE) declares it
and then calls this instead of copying our WORKSPACE:

    local_repository(name = "netpoll_rpc", path = "/path/to/netpoll-rpc")

    load("@netpoll_rpc//third_party:dependencies.bzl", "netpoll_rpc_dependencies")

    netpoll_rpc_dependencies()

It declares what Debian's Bazel 4.2.3 needs offline (platforms, skylib,
rules_java, and our rules_cc and remote_coverage_tools shims) and the
system-library repositories of third_party/system_libs.bzl. A repository the
workspace already declares is left alone.
"""

load(":system_libs.bzl", "system_libraries")

def _source_directory_impl(ctx):
    # The directory is a folder of this repository, found through a file
    # beside it, so the path holds wherever the repository is checked out.
    directory = ctx.path(ctx.attr.sibling).dirname.get_child(ctx.attr.directory)
    for child in directory.readdir():
        ctx.symlink(child, child.basename)

_source_directory = repository_rule(
    implementation = _source_directory_impl,
    attrs = {
        "sibling": attr.label(mandatory = True),
        "directory": attr.string(mandatory = True),
    },
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def netpoll_rpc_dependencies():
    """Declares the repositories netpoll-rpc's targets and rules need."""
    _maybe(native.local_repository, "platforms", path = "/usr/share/bazel/tools/platforms")
    _maybe(native.local_repository, "bazel_skylib", path = "/usr/share/bazel/tools/skylib")
    _maybe(native.local_repository, "rules_java", path = "/usr/share/bazel/rules/java")
    for shim in ["rules_cc", "remote_coverage_tools"]:
        _maybe(
            _source_directory,
            shim,
            sibling = Label("//third_party:BUILD.bazel"),
            directory = shim,
        )
    system_libraries()
