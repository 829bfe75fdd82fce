#!/usr/bin/env python3
"""Every code block of README.md is a verbatim excerpt of a file Bazel builds.

The README's tutorial must not rot: each fenced block (```cpp, ```proto,
```python for BUILD files) must appear, line for line, in one of the files
given on the command line, which are compiled or run by other targets
(examples/tutorial, examples/microservices, proto/shop). Shell blocks (```sh)
are commands, not code, and are skipped. Leading and trailing blank lines of a
block are ignored; indentation must match after removing the block's common
indent (snippets may be taken from inside a class or function).
"""
import re
import sys
import textwrap


def blocks(markdown):
    for match in re.finditer(r"^```(\w+)\n(.*?)^```", markdown, re.M | re.S):
        yield match.group(1), match.group(2)


def normalized_lines(text):
    return [line.rstrip() for line in textwrap.dedent(text).strip("\n").split("\n")]


def contains(haystack, needle):
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def main(argv):
    readme, sources = argv[1], argv[2:]
    files = {}
    for path in sources:
        with open(path) as f:
            lines = [line.rstrip() for line in f.read().split("\n")]
        files[path] = lines
    failures = 0
    checked = 0
    with open(readme) as f:
        text = f.read()
    for lang, body in blocks(text):
        if lang in ("sh", "text", "console"):
            continue
        checked += 1
        snippet = normalized_lines(body)
        found = False
        for path, lines in files.items():
            # Compare against every dedent of the file's windows: try the
            # snippet dedented against windows dedented the same way.
            n = len(snippet)
            for i in range(len(lines) - n + 1):
                window = normalized_lines("\n".join(lines[i:i + n]))
                if window == snippet:
                    found = True
                    break
            if found:
                break
        if not found:
            failures += 1
            print("README block not found verbatim in any compiled file:\n" + body)
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
