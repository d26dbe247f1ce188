"""Every relative link of the README and of docs/*.md leads somewhere: to a file that exists and,
with a `#anchor`, to a heading of that file, named by GitHub's anchor rules (lower case,
punctuation dropped, each space a '-', a repeated heading '-1', '-2', ...)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) and ![alt](target); the text may hold inline code but no bracket.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")


def outside_code_blocks(text: str) -> list[str]:
    """The lines of a Markdown text that are not in a fenced code block."""
    lines, fence = [], None
    for line in text.splitlines():
        marker = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence is None and marker:
            fence = marker[1]
        elif fence is not None:
            if marker and marker[1].startswith(fence) and not line.strip()[len(marker[1]) :]:
                fence = None
        else:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # so does an HTML tag
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_code_blocks(document.read_text()):
        heading = HEADING.match(line)
        if not heading:
            continue
        slug = anchor(heading[2])
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(document: Path) -> list[str]:
    """Link targets of a document outside code (inline code too), without a scheme (http:, ...)."""
    prose = "\n".join(outside_code_blocks(document.read_text()))
    prose = re.sub(r"`[^`\n]*`", "``", prose)
    targets = LINK.findall(prose)
    return [t for t in targets if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", t)]


def broken(document: Path, target: str, root: Path = REPO) -> str | None:
    """Why a link of ``document`` to ``target`` leads nowhere (or out of ``root``), or None."""
    path, _, fragment = target.partition("#")
    linked = (document.parent / unquote(path)).resolve() if path else document
    if not linked.is_relative_to(root) or not linked.exists():
        return f"{target}: no file {linked}"
    if fragment:
        if linked.suffix != ".md" or not linked.is_file():
            return f"{target}: #{fragment} in a file that is not Markdown"
        if unquote(fragment).lower() not in anchors(linked):
            return f"{target}: {linked.relative_to(root)} has no heading #{fragment}"
    return None


def test_github_anchors():
    assert anchor("Log in to an event's admin") == "log-in-to-an-events-admin"
    assert anchor("Workers: more servers for busier events") == (
        "workers-more-servers-for-busier-events"
    )
    assert anchor("Tear down an event, or everything") == "tear-down-an-event-or-everything"
    assert anchor("The `checks` job: `ubuntu-latest`") == "the-checks-job-ubuntu-latest"
    assert anchor("One-time set-up") == "one-time-set-up"


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n## Set-up\n\n## Set-up\n\n```bash\n# not a heading\n```\n")
    assert anchors(page) == {"page", "set-up", "set-up-1"}
    assert broken(page, "#set-up-1", tmp_path) is None
    assert broken(page, "page.md#set-up", tmp_path) is None
    assert broken(page, "#not-a-heading", tmp_path)
    assert broken(page, "other.md", tmp_path)
    assert broken(page, "page.md#nowhere", tmp_path)
    assert broken(page, "../outside.md", tmp_path)


def test_the_readme_links_to_every_page_of_docs():
    readme = REPO / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in relative_links(readme)}
    assert len(DOCUMENTS) > 1
    missing = [d.relative_to(REPO) for d in DOCUMENTS[1:] if d.resolve() not in linked]
    assert not missing, f"README.md links to no {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading(document):
    reasons = [broken(document, target) for target in relative_links(document)]
    problems = [reason for reason in reasons if reason]
    assert not problems, f"{document.relative_to(REPO)}: broken links:\n" + "\n".join(problems)
