"""The documentation as a newcomer reads it: every link and picture in the README and docs/ leads
somewhere, and the README's Python blocks run, in order, as written.

A block that cannot run here (it needs MPI, or leaves a name for the reader to fill in) is marked
by an HTML comment on the line before it, which GitHub does not show: `<!-- not run: why -->`.
"""
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"")
NOT_RUN = re.compile(r"<!--\s*not run:[^>]*-->\s*$")


def without_code(text):
    """The page with its code blocks and inline code blanked out (links there are examples)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page):
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def links(page):
    for match in LINK.finditer(without_code(page.read_text(encoding="utf-8"))):
        yield match.group(1) or match.group(2)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_link_and_picture_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):   # https:, mailto: ...: not checked offline
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def python_blocks(page):
    """(line, code) of each ```python block not marked `<!-- not run: ... -->`."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1).strip() != "python":
            continue
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not NOT_RUN.search(before):
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return blocks


def test_the_readme_python_blocks_run_in_order(tmp_path, monkeypatch, capsys):
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed (some blocks draw)")
    monkeypatch.chdir(tmp_path)   # blocks write their pictures and checkpoints here
    namespace = {"__name__": "readme"}
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) >= 10
    for line, code in blocks:   # a failure's traceback names the block: "README.md, block at line 57"
        exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)  # noqa: S102 (the README's own code)
    capsys.readouterr()
