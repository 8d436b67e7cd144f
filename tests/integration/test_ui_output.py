"""The job popup in a real browser: following a job that prints 100,000 lines keeps the
page responsive; the open job is in the URL; Cancel asks first."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support import ui
from tests.support.stack import Stack
from tests.support.ui import signed_in

pytestmark = pytest.mark.integration

# No test here runs an event loop of its own (asyncio.run): one browser serves them all.
browser = ui.module_browser

# The page must handle 95 % of the clicks, and finish 95 % of the pieces of its own work
# that take over 50 ms, within this, as the page itself measures them (input delay, long
# tasks). Both are timed on the wall clock: on a loaded machine the system may set the
# browser aside in the middle of one, so the longest of each is held to the looser bound
# below.
RESPONSIVE_MS = 250
# Round trips timed from this test process (a script, a click), and the gaps between the
# page's frames, also hold the machine's scheduling of the processes (a loaded 2-core
# machine): a page that blocks fails this looser bound too.
ROUND_TRIP_MS = 1000
# The end of the output shows within this of the job's end.
END_SHOWN_MS = 2000
SAMPLE_S = 0.5

# Installed in the page: the gaps between animation frames; the page's long tasks (its
# main thread busy over 50 ms at once); for each click, the time from the input to the
# first frame after its handlers ran (as Interaction to Next Paint counts it); and when
# the last drawn row changed.
RECORDER = """() => {
  const rec = { gaps: [], tasks: [0], clicks: [], ends: [] };
  window.__rec = rec;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) rec.tasks.push(e.duration);
  }).observe({ type: "longtask" });
  let last = 0;
  const frame = (t) => {
    if (last) rec.gaps.push(t - last);
    last = t;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  document.addEventListener("click", (e) => {
    requestAnimationFrame(() => setTimeout(() => rec.clicks.push(performance.now() - e.timeStamp)));
  }, true);
  const rows = document.querySelector("#job-dialog .logview-rows");
  new MutationObserver(() => {
    const text = rows.lastElementChild?.textContent;
    if (text !== rec.ends.at(-1)?.[1]) rec.ends.push([Date.now(), text]);
  }).observe(rows, { childList: true, subtree: true, characterData: true });
}"""


def empty_files(root: Path, count: int) -> Path:
    """`count` names of empty files, 500 a directory: plakar prints a line for each. The
    names of a directory are hard links to one file: made in a tenth of the time that
    as many files take (0.8 s against 5.9 s for 100,000), and a backup reads them all."""
    for n in range(count):
        d = root / f"d{n // 500}"
        if n % 500 == 0:
            d.mkdir(parents=True)
            first = d / f"f{n}"
            first.touch()
        else:
            os.link(first, d / f"f{n}")
    return root


def backup(stack: Stack, name: str, src: Path, tmp_path: Path, **opts: Any) -> str:
    source = stack.connector(f"{name}-src", "source", str(src))
    store = stack.store(f"{name}-store", tmp_path / f"{name}-store")
    body = {"type": "backup", "source_id": source, "store_id": store, **opts}
    job_id: str = stack.post("/tasks", body, expect=201)["job_id"]
    return job_id


def open_from_history(page: Page, job_id: str) -> Locator:
    page.get_by_role("button", name=f"Job {job_id[:8]} details").click()
    dialog = page.get_by_role("dialog", name=re.compile("backup"))
    expect(dialog).to_be_visible()
    return dialog


def click(page: Page, target: Locator) -> float:
    """Clicks where the target is; answers how long the page took to take the click
    (Playwright's own checks before a click are not counted)."""
    box = target.bounding_box(timeout=5000)
    assert box is not None
    t = time.perf_counter()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return ms(t)


def scroll_top(page: Page) -> float:
    top: float = page.evaluate("document.querySelector('#job-dialog .logview').scrollTop")
    return top


def ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def p95(ordered: list[float]) -> float:
    return ordered[int(0.95 * (len(ordered) - 1))]


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def test_following_100000_lines_keeps_the_page_responsive(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    started = time.perf_counter()
    src = empty_files(tmp_path / "src", 100_000)
    print(f"\n100,000 files in {ms(started) / 1000:.1f} s")
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    job_id = backup(stack, "flood", src, tmp_path)
    dialog = open_from_history(page, job_id)
    expect(page).to_have_url(re.compile(rf"#/scheduling/history\?job={job_id}$"))
    output = dialog.get_by_role("log", name="Job output")
    cancel = dialog.get_by_role("button", name="Cancel job")
    ask = page.get_by_role("alertdialog", name="Cancel this job?")
    keep = ask.get_by_role("button", name="Keep running")
    follow = dialog.get_by_role("button", name="Follow output")
    page.evaluate(RECORDER)

    answers: list[float] = []  # page.evaluate round trips
    clicks: list[float] = []  # Cancel, then Keep running: each click until it is handled
    paused_at = -1.0
    backup_started = time.perf_counter()
    while stack.get(f"/jobs/{job_id}")["status"] in ("queued", "running"):
        t = time.perf_counter()
        page.evaluate("0")
        answers.append(ms(t))
        try:
            clicks.append(click(page, cancel))
            expect(ask).to_be_visible()
            clicks.append(click(page, keep))
            expect(ask).to_be_hidden()
        except (AssertionError, PlaywrightTimeout):
            # Only because the job ended (Cancel went away): the api says so by then.
            assert stack.get(f"/jobs/{job_id}")["status"] not in ("queued", "running")
            break
        # Scrolling up stops following: what is in view stays while lines arrive.
        if len(answers) == 4:
            output.hover()
            page.mouse.wheel(0, -2000)
            expect(follow).to_be_visible()
        elif len(answers) == 5:
            paused_at = scroll_top(page)
        elif len(answers) == 7:
            assert scroll_top(page) == paused_at
            follow.click()
            expect(follow).to_be_hidden()
        time.sleep(SAMPLE_S)
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    took = time.perf_counter() - backup_started
    lines = stack.output_lines(job_id)
    assert len(lines) > 100_000
    assert len(answers) >= 8, "the job should run long enough to be sampled"
    expect(output.get_by_text(lines[-1], exact=True)).to_be_visible()
    rec = page.evaluate("window.__rec")
    tasks = sorted(rec["tasks"])
    tasks_p95 = p95(tasks)
    inputs = sorted(rec["clicks"])
    shown_at = next(t for t, text in rec["ends"] if text == lines[-1])
    end_delay = shown_at - epoch_ms(job["finished_at"])
    print(
        f"{len(lines):,} lines in {took:.1f} s; {len(answers)} samples: "
        f"max answer {max(answers):.0f} ms, max click {max(clicks):.0f} ms, "
        f"input delay p95 {p95(inputs):.0f} ms, longest {inputs[-1]:.0f} ms, "
        f"max frame gap {max(rec['gaps']):.0f} ms ({len(rec['gaps'])} frames), "
        f"long tasks p95 {tasks_p95:.0f} ms, longest {tasks[-1]:.0f} ms "
        f"({len(tasks) - 1} over 50 ms), "
        f"end shown {end_delay:.0f} ms after the job's end"
    )
    assert max(answers) < ROUND_TRIP_MS
    # A click from here waits for this process and Playwright's driver to be scheduled
    # too: once, on a loaded machine, one took 1,070 ms while the page took 80 ms at most
    # to handle any click (its own clock, `inputs` below). The page's longest is held by
    # its own clocks; of the clicks sent from here, 95 %.
    assert p95(sorted(clicks)) < ROUND_TRIP_MS
    assert p95(inputs) < RESPONSIVE_MS
    assert inputs[-1] < ROUND_TRIP_MS
    assert tasks_p95 < RESPONSIVE_MS
    assert tasks[-1] < ROUND_TRIP_MS
    assert max(rec["gaps"]) < ROUND_TRIP_MS
    assert end_delay < END_SHOWN_MS

    # The whole output is there: its first line at the top.
    output.focus()
    page.keyboard.press("Home")
    expect(output.get_by_text(lines[0], exact=True)).to_be_visible()
    follow.click()
    expect(output.get_by_text(lines[-1], exact=True)).to_be_visible()
    assert errors == []
    page.context.close()


def test_cancel_asks_first_and_the_open_job_is_in_the_url(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    job_id = backup(stack, "url", empty_files(tmp_path / "src", 50_000), tmp_path)
    stack.wait_running(job_id)
    errors: list[str] = []
    page = signed_in(browser, stack, errors=errors)
    history = re.compile(r"#/scheduling/history$")
    with_job = re.compile(rf"#/scheduling/history\?job={job_id}$")
    dialog = open_from_history(page, job_id)
    expect(page).to_have_url(with_job)

    # Cancel asks first: "Keep running", or Esc, leaves the job alone; confirming cancels it.
    cancel = dialog.get_by_role("button", name="Cancel job")
    ask = page.get_by_role("alertdialog", name="Cancel this job?")
    cancel.click()
    ask.get_by_role("button", name="Keep running").click()
    expect(ask).to_be_hidden()
    cancel.click()
    expect(ask).to_be_visible()
    page.keyboard.press("Escape")
    expect(ask).to_be_hidden()
    expect(dialog).to_be_visible()
    assert stack.get(f"/jobs/{job_id}")["status"] == "running"
    cancel.click()
    ask.get_by_role("button", name="Cancel job").click()
    # Said at once; a job stopped sooner than the page hears back shows its end instead.
    expect(dialog).to_contain_text(re.compile("Cancel requested|cancelled by web UI"))
    job = stack.wait_job(job_id, timeout=30)
    assert job["status"] == "cancelled" and job["error"] == "cancelled by web UI"
    expect(dialog.locator(".badge").first).to_have_text("cancelled")

    # A reload keeps the popup; closing it gives the URL back, by Back when the popup
    # was opened here.
    page.reload()
    expect(dialog).to_contain_text(job_id)
    expect(dialog.get_by_role("log", name="Job output")).to_contain_text("cancelled by web UI")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(history)
    open_from_history(page, job_id)
    expect(page).to_have_url(with_job)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(history)
    page.go_forward()
    expect(dialog).to_contain_text(job_id)
    page.go_back()
    expect(dialog).to_be_hidden()

    # Shared links: the popup over the page they name, or over the job history.
    connector = job["connector_ids"][0]
    page.goto(f"{stack.endpoints['ui_url']}#/connectors/{connector}?job={job_id}")
    expect(page.get_by_role("heading", name="url-src", exact=True)).to_be_visible()
    expect(dialog).to_contain_text(job_id)
    page.goto(f"{stack.endpoints['ui_url']}#/jobs/{job_id}")
    expect(page).to_have_url(with_job)
    expect(dialog).to_contain_text(job_id)
    assert errors == []
    page.context.close()
