"""The web UI in a test's browser: a page signed in as an operator would be."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.support.stack import Stack

VIEWPORT: ViewportSize = {"width": 1360, "height": 900}

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# The CPU controller's group of this machine's processes (cgroup v1).
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")


@contextmanager
def _favoured() -> Iterator[None]:
    """Processes started inside get ten times the CPU share of the stack's and the other
    test workers' processes: a user's browser runs on the user's machine, not on the two
    cores the server and the tests share here. A CPU group does it (Chromium sets its
    processes' niceness itself); where none can be made, they start as equals."""
    group = CPU_CGROUP / "plakar-cp-test-browsers"  # one for every run, kept
    me = str(os.getpid())
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.shares").write_text("10240")
        (group / "cgroup.procs").write_text(me)
    except OSError:
        yield
        return
    try:
        yield  # children started here stay in the group
    finally:
        (CPU_CGROUP / "cgroup.procs").write_text(me)


def launched_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, until the generator is closed."""
    with _favoured():  # Playwright's driver and Chromium stay favoured
        p = sync_playwright().start()
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
        p.stop()


# A module none of whose tests runs an event loop of its own (asyncio.run) keeps one
# browser for all its tests, each in a context of its own: `browser = module_browser`.
module_browser = pytest.fixture(scope="module", name="browser")(launched_browser)


def signed_in(
    browser: Browser,
    stack: Stack,
    route: str = "",
    errors: list[str] | None = None,
    token: str | None = None,
) -> Page:
    """A page of a context of its own, signed in with the token in the URL fragment (the
    UI trades it for its session cookie; the stack's admin token unless another is
    given), then at `route` if given. Errors of the page's scripts are appended to
    `errors`."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.endpoints['ui_url']}#token={token or stack.token}")
    expect(page).to_have_url(re.compile(r"#/scheduling/history$"))
    # The token leaves the address bar before it is traded: the services' health shows
    # once the session is open.
    expect(page.locator("#health .health-title")).to_be_visible()
    if route:
        page.goto(f"{stack.endpoints['ui_url']}{route}")
    return page
