"""The chat page in a real browser: Playwright driving Debian's Chromium against `mmed serve` on
127.0.0.1 (tiny model). Set-up: `bash tests/browser_setup.sh` (apt-get install chromium; pip install
playwright). Screenshots are saved in the test's tmp folder and copied to $MMED_ARTIFACTS
(default: runs/artifacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess

from mmedkit.serve.safety import SafetyPolicy

pytestmark = pytest.mark.slow  # about 40 s: a server, a browser and three answers

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("MMED_ARTIFACTS", Path(__file__).resolve().parents[2] / "runs" / "artifacts"))

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: bash tests/browser_setup.sh")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing: bash tests/browser_setup.sh (apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("browser") / "server.log"
    with ServerProcess(["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"], log) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _save(page: object, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


def test_chat_page_streams_answers_and_raises_red_flags(server: ServerProcess, browser: object,
                                                        tmp_path: Path) -> None:
    policy = SafetyPolicy.load()
    page = browser.new_page(viewport={"width": 1000, "height": 1100}, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.base + "/")
    page.wait_for_selector("body.ready")
    expect = sync_api.expect

    # English UI, persistent disclaimer, demo-model notice, labelled controls, example prompts.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#banner")).to_contain_text("It is not a doctor")
    expect(page.locator("#notice")).to_contain_text("tiny random test model")
    expect(page.get_by_label("Describe your symptoms")).to_be_visible()
    expect(page.get_by_label("Language")).to_have_value("en")
    expect(page.locator(".example")).to_have_count(3)

    # Count text updates of the answer as they arrive: a streamed answer grows in many steps.
    page.evaluate("""() => { window.__updates = 0;
        new MutationObserver((ms) => { window.__updates += ms.length; })
          .observe(document.getElementById('log'), {characterData: true, subtree: true, childList: true}); }""")
    page.get_by_label("Describe your symptoms").fill("Sore throat and sneezing since yesterday — is it a cold?")
    page.keyboard.press("Enter")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".disclaimer")).to_have_text(policy.disclaimer("en"), timeout=60_000)
    expect(answer).to_have_attribute("aria-busy", "false")
    assert len(answer.locator(".text").inner_text().strip()) > 0
    assert page.evaluate("window.__updates") > 5

    # Red flag in French, typed with the French UI.
    page.locator("#lang").select_option("fr")
    expect(page.locator("#send")).to_have_text("Envoyer")
    expect(page.locator("label[for=prompt]")).to_have_text("Décrivez vos symptômes")
    expect(page.locator("#banner")).to_contain_text("Ce n'est pas un médecin")
    page.locator("#prompt").fill("J'ai une douleur à la poitrine et je suis essoufflé")
    page.locator("#send").click()
    emergency = page.locator(".message.emergency").last
    expect(emergency).to_have_attribute("role", "alert", timeout=30_000)
    expect(emergency.locator(".who")).to_have_text("Urgence possible")
    expect(emergency).to_contain_text("le 15 (SAMU)")

    # Red flag in Japanese, typed while the page is still in French.
    page.locator("#prompt").fill("生後1ヶ月の赤ちゃんが38度の熱があります")
    page.keyboard.press("Enter")
    expect(page.locator(".message.emergency")).to_have_count(2, timeout=30_000)
    expect(page.locator(".message.emergency").last).to_contain_text("119")

    # Markup in messages stays text.
    page.locator("#lang").select_option("ja")
    expect(page.locator("label[for=lang]")).to_have_text("言語")
    page.locator("#prompt").fill('<img src=x onerror="window.__xss=1"><b>頭が痛い</b>')
    page.keyboard.press("Enter")
    try:
        expect(page.locator(".message.assistant .disclaimer")).to_have_count(2, timeout=60_000)
    except AssertionError as exc:  # say what the page shows instead
        raise AssertionError(f"{exc}\npage log: {page.locator('#log').inner_text()[-600:]}") from None
    expect(page.locator(".message.user .text").last).to_have_text('<img src=x onerror="window.__xss=1"><b>頭が痛い</b>')
    assert page.locator("#log img, #log b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert errors == []

    page.locator(".message.emergency").first.scroll_into_view_if_needed()
    shot = _save(page, tmp_path, "serve-chat.png")
    assert shot.stat().st_size > 20_000
    page.close()


def test_chat_page_fits_a_phone_screen(server: ServerProcess, browser: object, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="es-ES", is_mobile=True)
    page.goto(server.base + "/")
    page.wait_for_selector("body.ready")
    sync_api.expect(page.locator("html")).to_have_attribute("lang", "es")  # picked from the browser's language
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator(".example").first.click()
    sync_api.expect(page.locator(".message.assistant .disclaimer")).to_have_count(1, timeout=60_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _save(page, tmp_path, "serve-chat-mobile.png")
    page.close()


def test_an_emergency_spread_over_two_turns_is_an_alert_with_phone_links(server: ServerProcess, browser: object,
                                                                          tmp_path: Path) -> None:
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1000, "height": 1100}, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.base + "/")
    page.wait_for_selector("body.ready")

    # First turn: chest pain alone is not an emergency; the model answers.
    page.locator("#prompt").fill("I've had a pain in the middle of my chest since this morning")
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant .disclaimer")).to_have_count(1, timeout=60_000)
    assert page.locator(".message.emergency").count() == 0

    # Second turn, in Spanish: the cold sweat completes the emergency of the whole conversation.
    page.locator("#prompt").fill("Ahora estoy empapado en sudor frío")
    page.keyboard.press("Enter")
    alert = page.locator(".message.emergency")
    expect(alert).to_have_count(1, timeout=30_000)
    expect(alert).to_have_attribute("role", "alert")
    expect(alert.locator(".who")).to_have_text("Possible emergency")  # the page's language
    expect(alert).to_contain_text("112")  # the answer in the language of the message (Spanish)
    expect(alert.locator("a[href='tel:112']").first).to_be_visible()
    assert alert.locator("a[href^='tel:']").count() >= 3
    assert alert.locator("a:not([href^='tel:']), img, script").count() == 0
    assert errors == []
    _save(page, tmp_path, "serve-chat-emergency.png")
    page.close()
