"""Playwright (sync API) driving Debian's Chromium, for the browser tests of the Airflow UI.

- :func:`launch`: Debian's ``chromium`` (``apt-get install chromium``, see ``make os-deps``),
  never a browser Playwright downloads; the tests fail, saying what to install, when it or the
  ``playwright`` package is missing (a skip would pass CI without a browser).
- :func:`new_page`: a fresh context (no cookies) at a laptop's viewport whose requests may
  only go to 127.0.0.1: anything else is aborted (and kept in ``page.blocked_urls``).
- :func:`login`: Airflow's SimpleAuthManager sign-in form, as a person fills it.
- :func:`artefacts_on_failure`: wraps a test's browser steps; when one fails it saves a
  full-page screenshot, the page's URL and its HTML under ``var/test-artifacts/browser/`` and
  fails with their path in the message.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "var" / "test-artifacts" / "browser"
VIEWPORT = {"width": 1600, "height": 1000}
# Bounded waits. The api-server runs one worker and a task start can hold it 15-30 s on two
# cores (see test_ui_release.CLIENT_TIMEOUT_S): a page or an element gets this long.
TIMEOUT_MS = 60_000
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?(/|$)")


def sync_playwright():
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        pytest.fail("playwright is not installed (make venv: the dev extra)")
    return start()


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium; make os-deps)")
    return path


def expect(target, message: str | None = None):
    """Playwright's ``expect``; its assertions wait up to :data:`TIMEOUT_MS` (set by
    :func:`launch`) unless told otherwise."""
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(target, message)


def launch(playwright) -> Any:
    """Debian's Chromium, headless. Playwright passes ``--no-sandbox`` by default
    (``chromium_sandbox=False``): Chromium's sandbox refuses to start as root, which is how
    the tests run here."""
    from playwright.sync_api import expect as playwright_expect
    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      chromium_sandbox=False)


def new_page(browser, viewport: dict[str, int] | None = None) -> Any:
    context = browser.new_context(viewport=viewport or VIEWPORT, locale="en-US",
                                  timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    blocked: list[str] = []

    def only_local(route) -> None:
        blocked.append(route.request.url)
        route.abort("blockedbyclient")

    context.route(lambda url: url.startswith(("http:", "https:", "ws:", "wss:"))
                  and not LOCAL.match(url), only_local)
    page = context.new_page()
    page.blocked_urls = blocked
    return page


def login(page, base_url: str, username: str, password: str) -> None:
    """Open Airflow, get sent to its sign-in form, sign in; return on Airflow's home page."""
    page.goto(f"{base_url}/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(base_url) and "/auth/login" not in url)
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()
    assert any(c["name"] == "_token" for c in page.context.cookies()), "no session cookie"


def save_artefacts(page, name: str) -> Path:
    """Full-page screenshot ``<name>.png``, ``<name>.url`` and ``<name>.html``; returns the
    screenshot's path (or what could be saved when the page is gone)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{name}.png"
    notes = []
    for what, save in (("url", lambda: (ARTIFACTS / f"{name}.url").write_text(page.url + "\n")),
                       ("screenshot", lambda: page.screenshot(path=str(png), full_page=True,
                                                              timeout=30_000)),
                       ("html", lambda: (ARTIFACTS / f"{name}.html").write_text(
                           page.content()))):
        try:
            save()
        except Exception as exc:  # noqa: BLE001 - a dead page still leaves what it can
            notes.append(f"{what} not saved: {type(exc).__name__}: {exc}")
    return png if not notes else Path(f"{png} ({'; '.join(notes)})")


@contextmanager
def artefacts_on_failure(page, name: str) -> Iterator[None]:
    """On any failure inside: save the page (see :func:`save_artefacts`) as ``<name>-failure``
    and fail with the screenshot's path in the message (the original error chained)."""
    stem = f"{name}-failure"
    for old in ARTIFACTS.glob(f"{stem}.*"):
        old.unlink()
    try:
        yield
    except Exception as exc:
        path = save_artefacts(page, stem)
        raise AssertionError(f"browser artefacts (screenshot, .url, .html): {path}\n"
                             f"{type(exc).__name__}: {exc}") from exc


def fill_json(page, scope, label: str, text: str) -> None:
    """Type ``text`` into the JSON editor (Monaco) of the form field labelled ``label``."""
    editor = field(scope, label).get_by_role("code")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)  # not type(): Monaco would close brackets and quotes


def field(scope, label: str):
    """The form field (Chakra's ``role=group``) whose label reads ``label``. Airflow's trigger
    form does not tie every label to its input (``for`` names another id), so the field is
    found by its label and the input inside it by its role."""
    return scope.get_by_role("group").filter(
        has=scope.page.locator("label").filter(
            has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
