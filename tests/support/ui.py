"""The web UI in a test's browser: a page signed in as an operator would be."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.support.stack import Stack

VIEWPORT: ViewportSize = {"width": 1360, "height": 900}


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
