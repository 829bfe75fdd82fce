"""Compiler options for the project's own code (not for external repositories)."""

NPRPC_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]

NPRPC_TEST_COPTS = NPRPC_COPTS + [
    "-Wno-sign-compare",
]
