#!/usr/bin/env python3
"""linkcheck: every relative link in README.md, docs/*.md and bench/README.md must resolve.

A link [text](path), [text](path#anchor) or ![alt](path) resolves when the path, taken relative to
the file that holds the link, names a file or folder of the repository, and when an #anchor (also
a bare #anchor into the same file) names a heading of that Markdown file, spelled as GitHub spells
heading anchors. Links with a scheme (https:, mailto:) are not checked; links inside code blocks
and code spans are not links. Prints one line per broken link and exits 1 when there is any.

Usage: linkcheck.py [REPO]   (default: the repository this script is in)
"""
import re
import sys
from pathlib import Path

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def prose_lines(text):
    """prose_lines: (line number, line) outside fenced code blocks, code spans blanked out."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """slug: GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        fenced = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if FENCE.match(line):
                fenced = not fenced
                continue
            m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                s = slug(m.group(1))
                n = seen.get(s, 0)
                seen[s] = n + 1
                found.add(s if n == 0 else f"{s}-{n}")
        cache[path] = found
    return cache[path]


def check(repo):
    files = [repo / "README.md", repo / "bench" / "README.md", *sorted((repo / "docs").glob("*.md"))]
    broken = []
    for md in files:
        if not md.exists():
            broken.append(f"{md.relative_to(repo)}: missing")
            continue
        for n, line in prose_lines(md.read_text(encoding="utf-8")):
            for m in LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                    continue  # https:, mailto: ...
                path_part, _, anchor = target.partition("#")
                dest = (md.parent / path_part).resolve() if path_part else md
                where = f"{md.relative_to(repo)}:{n}: {target}"
                if not dest.exists():
                    broken.append(f"{where}: no such file")
                elif repo.resolve() not in dest.resolve().parents and dest.resolve() != repo.resolve():
                    broken.append(f"{where}: outside the repository")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    broken.append(f"{where}: no heading with that anchor")
    return broken


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    broken = check(repo)
    for b in broken:
        print(f"linkcheck: {b}", file=sys.stderr)
    if broken:
        return 1
    print("linkcheck: every relative link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
