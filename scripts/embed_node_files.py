"""Copy node/* into template.yaml's NodeLaunchTemplate user data, where they are embedded as shipped: verbatim, but
for the shell scripts' comment-only lines (EC2 takes at most 16 KB of user data; the comments stay in node/ for
their readers, the shebang stays).

The files are the one source (tests/node runs them); the template carries copies, as Fn::Sub variables of the
user data (their values are not substituted, so the scripts' own ${...} stay as written).
tests/stack/test_node_user_data.py fails when a copy differs from its file: run

    .venv/bin/python scripts/embed_node_files.py

after changing a file in node/. Only the embedded blocks are rewritten; nothing else in the template moves.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
#: Fn::Sub variable of the user data -> the file it embeds.
EMBEDDED = {
    "MultusLinkUp": "node/multus-link-up",
    "MultusLinksWait": "node/multus-links-wait",
    "MultusLinkUpUnit": "node/multus-link-up@.service",
    "MultusLinkUpRule": "node/90-multus-link-up.rules",
    "KubeletDropIn": "node/10-multus-links.conf",
}
#: The variables' indentation in the template, and their block's.
KEY_INDENT = " " * 14
BLOCK_INDENT = " " * 16


def shipped(path: str) -> str:
    """What the node gets of ``node/...``: a shell script without its comment-only lines (but the shebang), any
    other file as it is."""
    content = (ROOT / path).read_text()
    if not content.startswith("#!"):
        return content
    lines = content.splitlines(keepends=True)
    return lines[0] + "".join(line for line in lines[1:] if not line.lstrip().startswith("#"))


def embed(template: str, variable: str, content: str) -> str:
    """``template`` with the block scalar of ``variable`` replaced by ``content``."""
    lines = template.splitlines(keepends=True)
    header = f"{KEY_INDENT}{variable}: |\n"
    starts = [i for i, line in enumerate(lines) if line == header]
    if len(starts) != 1:
        raise SystemExit(f"template.yaml: expected one line {header.strip()!r}, found {len(starts)}")
    first = starts[0] + 1
    end = first
    while end < len(lines) and (lines[end].startswith(BLOCK_INDENT) or lines[end] == "\n"):
        end += 1
    while end > first and lines[end - 1] == "\n":  # blank lines after the block belong to what follows
        end -= 1
    block = [f"{BLOCK_INDENT}{line}" if line.strip() else "\n" for line in content.splitlines(keepends=True)]
    return "".join(lines[:first] + block + lines[end:])


def main() -> int:
    template = TEMPLATE.read_text()
    updated = template
    for variable, path in EMBEDDED.items():
        updated = embed(updated, variable, shipped(path))
    if updated != template:
        TEMPLATE.write_text(updated)
        print("template.yaml: node/ files embedded again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
