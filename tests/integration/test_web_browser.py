"""The page in a real browser: Debian's Chromium driven by Playwright, against uvicorn on
127.0.0.1. Skipped (with the reason) where Chromium or Playwright is not installed; CI installs
both. Set ZSPACE_SCREENSHOT=path to also copy the page's screenshot there."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("ZSPACE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytest.importorskip("fastapi", reason="the web extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from web_stand_ins import StandInClassifier  # noqa: E402

from zspace.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def translators_dir(small_ae_run, mnist_dir, tmp_path_factory):
    """One translator run (shift, all pairs: no training, about a second) for the page's
    restyle method control."""
    from zspace.models.translator import TranslatorConfig
    from zspace.training.translator import TranslatorTrainingConfig, train_translator

    root = tmp_path_factory.mktemp("browser-translators") / "translators"
    train_translator(
        root / "all" / "shift",
        TranslatorConfig(method="shift", source=None, target=None),
        TranslatorTrainingConfig(limit=2000, epochs=1),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return root


@pytest.fixture(scope="module")
def base_url(web_cgan_run, translators_dir):
    """uvicorn serving the app in a thread on a free port of 127.0.0.1."""
    app = create_app(web_cgan_run, classifier=StandInClassifier(), translators_dir=translators_dir)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh page that records failed requests, requests to other hosts and script errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
    page.on(
        "request",
        lambda request: (
            request.url.startswith((base_url, "data:", "blob:"))
            or page.problems.append(f"request to another host: {request.url}")
        ),
    )
    page.on(
        "response",
        lambda response: (
            response.status < 400 or page.problems.append(f"{response.status} from {response.url}")
        ),
    )
    yield page
    context.close()


def test_page_generates_morphs_and_reads_a_drawing(page, base_url, tmp_path):
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-ready=true]")

    # samples: ask for eight 3s and wait for the grid to load
    page.select_option("#digit", "3")
    page.fill("#count", "8")
    page.fill("#seed", "11")
    with page.expect_response(lambda r: "/api/generate" in r.url and "digit=3" in r.url):
        page.click("#generate")
    page.wait_for_function(
        "() => { const img = document.querySelector('#samples img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    assert page.locator("#samples-error").is_hidden()

    # morph: sixteen frames arrive; moving the slider changes the frame shown
    page.wait_for_function("() => document.querySelectorAll('#morph-strip img').length === 16")
    first = page.get_attribute("#morph-img", "src")
    assert first.startswith("data:image/png")
    page.focus("#morph-slider")
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#morph-slider") == "15"
    assert page.get_attribute("#morph-img", "src") != first
    assert page.locator("#morph-strip img").nth(15).get_attribute("class") == "current"

    # drawing: one stroke on the canvas gives a prediction and ten restyled digits
    box = page.locator("#canvas").bounding_box()
    left, top = box["x"], box["y"]
    page.mouse.move(left + 140, top + 50)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(left + 140 + step, top + 50 + 18 * step)
    page.mouse.up()
    page.wait_for_function(
        "() => /looks like a \\d/.test(document.querySelector('#prediction').textContent)"
    )
    assert page.locator("#probabilities .bar").count() == 10
    page.wait_for_function("() => document.querySelectorAll('#restyled img').length === 10")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#restyled img')].every(i => i.naturalWidth > 0)"
    )

    screenshot = tmp_path / "page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("ZSPACE_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["ZSPACE_SCREENSHOT"])
    assert page.problems == []


def draw_a_stroke(page) -> None:
    box = page.locator("#canvas").bounding_box()
    left, top = box["x"], box["y"]
    page.mouse.move(left + 140, top + 50)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(left + 140 + step, top + 50 + 18 * step)
    page.mouse.up()


def test_the_restyle_method_control_picks_a_translator(page, base_url):
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    # the methods the server offers, today's restyle first and chosen
    options = page.eval_on_selector_all("#restyle-method option", "os => os.map(o => o.value)")
    assert options == ["restyle", "shift"]
    assert page.input_value("#restyle-method") == "restyle"
    draw_a_stroke(page)
    page.wait_for_function("() => document.querySelectorAll('#restyled img').length === 10")
    # choosing shift redraws the same drawing with the all-pairs shift run
    with page.expect_response(lambda r: "/api/restyle" in r.url and "method=shift" in r.url):
        page.select_option("#restyle-method", "shift")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#restyled img')].filter("
        "i => i.title === 'translators/all/shift').length === 9"
    )
    assert page.locator("#draw-error").is_hidden()
    assert page.problems == []


def test_api_reference_renders_offline(page, base_url):
    page.goto(base_url + "/docs")
    page.wait_for_function("() => document.querySelectorAll('#reference section').length >= 6")
    text = page.inner_text("#reference")
    for path in ("/api/generate", "/api/interpolate", "/api/classify", "/api/restyle"):
        assert path in text
    assert page.problems == []
