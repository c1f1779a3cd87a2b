"""chunk_page / chunk_release: heading paths, MkDocs clean-up and token-bounded splitting."""

from __future__ import annotations

import re

import pytest
from tests.conftest import paperless_release

from tandem.documents import Chunk, Page
from tandem.errors import BadInput
from tandem.indexing.chunking import chunk_page, chunk_release
from tandem.indexing.loader import load_release

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def words(text: str) -> int:
    return len(text.split())


def chunks(markdown: str, max_tokens: int = 220, file: str = "guide.md") -> list[Chunk]:
    return chunk_page(Page(file, markdown), "v1", words, max_tokens)


def pairs(markdown: str, max_tokens: int = 220) -> list[tuple[str, str]]:
    return [(c.heading, c.text) for c in chunks(markdown, max_tokens)]


def prose_lines(text: str) -> list[str]:
    """Lines outside fenced code."""
    lines, in_code = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def unsplittable(text: str) -> bool:
    """One code line, one table row or one word: nothing smaller can be cut off."""
    content = [line for line in text.split("\n") if not FENCE.match(line)]
    if text.startswith("|"):
        content = content[2:]
    whole_line = text.startswith("|") or any(FENCE.match(line) for line in text.split("\n"))
    return len(content) == 1 and (whole_line or words(content[0]) == 1)


def test_heading_path_follows_levels() -> None:
    markdown = (
        "# Guide\nIntro.\n## Install\nInstall text.\n### Docker\nDocker text.\n"
        "## Configure\nConfigure text.\n#### Deep\nDeep text.\n# Second\nOther.\n"
    )

    assert pairs(markdown) == [
        ("Guide", "Intro."),
        ("Guide > Install", "Install text."),
        ("Guide > Install > Docker", "Docker text."),
        ("Guide > Configure", "Configure text."),
        ("Guide > Configure > Deep", "Deep text."),
        ("Second", "Other."),
    ]


def test_page_without_h1_uses_file_stem_and_keeps_preamble() -> None:
    found = chunks("Preamble.\n\n## Step one\nDo it.\n", file="howto/first-steps.md")

    assert [(c.heading, c.text, c.file) for c in found] == [
        ("first-steps", "Preamble.", "howto/first-steps.md"),
        ("first-steps > Step one", "Do it.", "howto/first-steps.md"),
    ]
    assert found[0].anchor is None


def test_attribute_list_and_html_headings_give_anchors() -> None:
    markdown = (
        "# API\n## Rate limits {#rate-limits}\nA.\n"
        '<h2 id="proxy">Behind a <em>proxy</em></h2>\nB.\n'
        "## Plain Heading\nC.\n## Plain Heading\nD.\n"
        "#### [`PAPERLESS_DB_OPTIONS=<options>`](#PAPERLESS_DB_OPTIONS)"
        " {#PAPERLESS_DB_OPTIONS}\nE.\n"
    )

    assert [(c.heading, c.anchor) for c in chunks(markdown)] == [
        ("API > Rate limits", "rate-limits"),
        ("API > Behind a proxy", "proxy"),
        ("API > Plain Heading", "plain-heading"),
        ("API > Plain Heading", "plain-heading_1"),
        ("API > Plain Heading > PAPERLESS_DB_OPTIONS=<options>", "PAPERLESS_DB_OPTIONS"),
    ]


def test_setext_headings() -> None:
    assert pairs("Guide\n=====\nIntro.\n\nSetup\n-----\nSteps.\n") == [
        ("Guide", "Intro."),
        ("Guide > Setup", "Steps."),
    ]


def test_hash_lines_in_fenced_code_are_not_headings() -> None:
    markdown = (
        "# Guide\n## Shell\n```bash\n# not a heading\necho hi\n```\n"
        "~~~~\n## also not\n~~~~\n"
        '!!! note "Inside"\n    ````python\n    # still not a heading\n    ````\n'
        "## Next\nDone.\n"
    )

    found = chunks(markdown)

    assert [c.heading for c in found] == ["Guide > Shell", "Guide > Next"]
    assert "# not a heading" in found[0].text
    assert "## also not" in found[0].text
    assert "Note: Inside —\n````python\n# still not a heading\n````" in found[0].text


def test_admonitions_render_as_plain_text_inside_their_section() -> None:
    markdown = (
        "# Guide\n## Tips\nBefore.\n\n"
        '!!! note "Keep it short"\n    Body line one\n    continues here.\n\n    Second one.\n\n'
        "???+ tip\n    Collapsible body.\n\n"
        "!!! warning\n\n    ```bash\n    rm -rf /tmp/x\n    ```\n"
        "After.\n"
    )

    assert pairs(markdown) == [
        (
            "Guide > Tips",
            "Before.\n\nNote: Keep it short — Body line one\ncontinues here.\n\nSecond one.\n\n"
            "Tip: Collapsible body.\n\nWarning:\n```bash\nrm -rf /tmp/x\n```\n\nAfter.",
        )
    ]


def test_nested_admonition_in_list_item_is_de_indented() -> None:
    markdown = "# G\n1.  Step.\n\n    !!! note\n\n        Mind this.\n\n2.  Next step.\n"

    assert pairs(markdown) == [("G", "1.  Step.\n\nNote: Mind this.\n\n2.  Next step.")]


def test_front_matter_comments_wrappers_images_and_macros_are_stripped() -> None:
    markdown = (
        "---\ntitle: Home\n---\n# Home\n<!-- hidden\n# not a heading\n-->\n"
        '<div class="grid" markdown>\n![logo](assets/logo.png){.logo}\n'
        "Read the [install guide](setup.md#docker){ .md-button } first, see [ref][r].\n"
        '</div>\n--8<-- "snippets/banner.md"\n{% include "x.html" %}\n\n'
        "[r]: https://example.com\n"
    )

    assert pairs(markdown) == [("Home", "Read the install guide first, see ref.")]


def test_markup_inside_code_is_kept_verbatim() -> None:
    markdown = (
        '# T\nUse `OPTIONS["a"]["b"]` and `<div>`.\n\n'
        "```jinja\n<!-- keep -->\n{% if x %}[a](b){% endif %}\n```\n"
    )

    assert pairs(markdown) == [
        (
            "T",
            'Use `OPTIONS["a"]["b"]` and `<div>`.\n\n'
            "```jinja\n<!-- keep -->\n{% if x %}[a](b){% endif %}\n```",
        )
    ]


def test_whitespace_is_normalised() -> None:
    assert pairs("# T\n\nline with trailing   \n\n\n\nnext\t\n\n\n") == [
        ("T", "line with trailing\n\nnext")
    ]


def test_empty_sections_are_skipped_and_sections_never_merge() -> None:
    markdown = "# A\n## B\n### C\ntext c\n## D\n\n## E\ntext e\n"

    assert pairs(markdown) == [("A > B > C", "text c"), ("A > E", "text e")]


def test_small_blocks_are_packed_and_split_between_paragraphs() -> None:
    paragraph = " ".join(["word"] * 8) + "."
    markdown = "# T\n" + "\n\n".join([paragraph] * 5)

    found = chunks(markdown, max_tokens=20)

    assert [c.text for c in found] == ["\n\n".join([paragraph] * 2)] * 2 + [paragraph]


def test_long_table_is_split_between_rows_with_header_repeated() -> None:
    header = "| Setting | Meaning |\n| ------- | ------- |"
    rows = [f"| `S{i}` | meaning number {i} here |" for i in range(12)]
    markdown = f"# T\n## Table\n{header}\n" + "\n".join(rows) + "\n"

    found = chunks(markdown, max_tokens=40)

    assert len(found) > 1
    seen: list[str] = []
    for chunk in found:
        lines = chunk.text.split("\n")
        assert lines[:2] == ["| Setting | Meaning |", "| --- | --- |"]
        assert words(chunk.embed_text) <= 40
        seen += lines[2:]
    assert seen == [" ".join(row.split()) for row in rows]


def test_long_code_block_is_split_between_lines_with_balanced_fences() -> None:
    body = [f"echo line{i}" for i in range(30)]
    markdown = "# T\nIntro.\n\n```bash\n" + "\n".join(body) + "\n```\n"

    found = chunks(markdown, max_tokens=25)

    code = [c for c in found if c.text.startswith("```")]
    assert len(code) > 1
    seen: list[str] = []
    for chunk in code:
        lines = chunk.text.split("\n")
        assert lines[0] == "```bash" and lines[-1] == "```"
        assert words(chunk.embed_text) <= 25
        seen += lines[1:-1]
    assert seen == body


def test_long_paragraph_is_split_at_sentences() -> None:
    sentences = [f"Sentence {i} has exactly six words." for i in range(10)]
    markdown = "# T\n" + " ".join(sentences) + "\n"

    found = chunks(markdown, max_tokens=20)

    assert len(found) == 4
    assert all(c.text.endswith(".") and words(c.embed_text) <= 20 for c in found)
    assert " ".join(c.text for c in found) == " ".join(sentences)


def test_unsplittable_line_is_its_own_chunk() -> None:
    markdown = "# T\nshort\n\n```\n" + " ".join(["x"] * 50) + "\n```\n"

    found = chunks(markdown, max_tokens=10)

    assert [c.text for c in found][0] == "short"
    assert unsplittable(found[1].text)


def test_chunk_release_keeps_page_order_and_release() -> None:
    pages = [Page("b.md", "# B\nbee"), Page("a.md", "# A\nay")]

    found = chunk_release(pages, "v9", words)

    assert [(c.file, c.release) for c in found] == [("b.md", "v9"), ("a.md", "v9")]


def test_chunking_is_deterministic() -> None:
    markdown = "# T\n" + "\n\n".join(f"Paragraph {i} text." for i in range(40))

    assert chunks(markdown, 12) == chunks(markdown, 12)


def test_max_tokens_below_one_is_bad_input() -> None:
    with pytest.raises(BadInput, match="max_tokens"):
        chunks("# T\ntext", max_tokens=0)


def test_real_paperless_docs_chunk_within_limits() -> None:
    found = chunk_release(load_release(paperless_release("v3.0.5")), "v3.0.5", words, 220)

    assert len(found) > 100
    for chunk in found:
        assert chunk.text.strip(), chunk.heading
        assert words(chunk.embed_text) <= 220 or unsplittable(chunk.text), chunk.heading
        assert sum(1 for line in chunk.text.split("\n") if FENCE.match(line)) % 2 == 0
        assert "{#" not in chunk.heading
        assert not any(re.match(r"\s*(!!!|\?\?\?)", line) for line in prose_lines(chunk.text))
    db_options = [c for c in found if c.heading.endswith("PAPERLESS_DB_OPTIONS=<options>")]
    assert db_options and db_options[0].file == "configuration.md"
    assert db_options[0].heading.startswith("Configuration > Required services > Database")
    assert db_options[0].anchor == "PAPERLESS_DB_OPTIONS"


def test_admonition_label_is_repeated_on_every_part_of_its_code() -> None:
    body = [f"step{i} --flag" for i in range(20)]
    code = "".join(f"    {line}\n" for line in body)
    markdown = f"# T\n!!! example\n    ```\n{code}    ```\n"

    found = chunks(markdown, max_tokens=15)

    assert len(found) > 1
    assert all(c.text.startswith("Example:\n```\n") and c.text.endswith("\n```") for c in found)


def test_unresolvable_snippet_include_leaves_no_empty_code_block() -> None:
    markdown = '# T\nSee the script:\n\n```bash title="x.sh"\n--8<-- "scripts/x.sh"\n```\n'

    assert pairs(markdown) == [("T", "See the script:")]
