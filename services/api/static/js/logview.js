// A windowed log viewer. The lines live in arrays; the DOM holds only the rows in
// view and a margin around them, so a job that prints a million lines costs the page
// what one that prints fifty does. Lines that arrive between two frames are added at
// the next one, together, however many messages brought them.

import { h, utc } from "./dom.js";

// Past this the oldest lines go (memory); "Full output (text)" keeps every line.
const MAX_LINES = 200_000;
const OVERSCAN = 30; // rows drawn above and below the view, so that fast scrolling shows text
const PAD = 8; // px above the first row and below the last

export class LogView {
  constructor(label) {
    this.text = [];
    this.stamps = [];
    this.system = [];
    this.pending = [];
    this.dropped = 0; // oldest lines let go so far
    this.epoch = 0; // changes when lines move to other indexes: every row is drawn again
    this.follow = true;
    this.frame = 0;
    this.rowHeight = 0;
    this.sizer = h("div", { class: "logview-sizer" });
    this.rows = h("div", { class: "logview-rows" });
    this.scroller = h(
      "div",
      { class: "output logview", role: "log", "aria-label": label, tabindex: 0 },
      this.sizer,
      this.rows,
    );
    this.followButton = h(
      "button",
      { type: "button", class: "follow small", hidden: true, onclick: () => this.jumpToEnd() },
      "↓ Follow output",
    );
    this.el = h("div", { class: "output-wrap" }, this.scroller, this.followButton);
    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
  }

  // Lines `{line, stream, ts}`, drawn at the next frame.
  append(lines) {
    for (const l of lines) this.pending.push(l);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  stop() {
    cancelAnimationFrame(this.frame);
  }

  flush() {
    this.frame = 0;
    if (!this.rowHeight && !this.measure()) {
      this.frame = requestAnimationFrame(() => this.flush()); // not laid out yet
      return;
    }
    const before = this.scroller.scrollTop;
    const gone = this.take();
    this.sizer.style.height = `${this.text.length * this.rowHeight + 2 * PAD}px`;
    if (this.follow) this.scroller.scrollTop = this.scroller.scrollHeight;
    else if (gone) this.scroller.scrollTop = before - gone * this.rowHeight; // the same lines stay in view
    this.draw();
  }

  // One row's height, from the stylesheet; 0 while the viewer is not displayed.
  measure() {
    const probe = h("div", { class: "line" }, " ");
    this.rows.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height;
    probe.remove();
    return this.rowHeight > 0;
  }

  // Moves the pending lines to the arrays; answers how many rows went at the head.
  take() {
    for (const l of this.pending) {
      this.text.push(l.line);
      this.stamps.push(l.ts || "");
      this.system.push(l.stream === "system");
    }
    this.pending = [];
    const over = this.text.length - MAX_LINES;
    return over > 0 ? this.trim(over + MAX_LINES / 10) : 0;
  }

  // The oldest lines go, a tenth at a time; a first row says how many went.
  trim(count) {
    const rows = this.text.length;
    const marker = this.dropped ? 1 : 0;
    for (const a of [this.text, this.stamps, this.system]) a.splice(0, count + marker);
    this.dropped += count;
    this.text.unshift(`… ${this.dropped.toLocaleString("en")} earlier lines are not kept here: see "Full output"`);
    this.stamps.unshift("");
    this.system.unshift(true);
    this.epoch += 1;
    return rows - this.text.length;
  }

  // Draws the rows in view and OVERSCAN more on each side; rows showing the same line
  // as before are left alone.
  draw() {
    const height = this.rowHeight;
    if (!height) return;
    const top = this.scroller.scrollTop - PAD;
    const from = Math.max(0, Math.floor(top / height) - OVERSCAN);
    const to = Math.min(this.text.length, Math.ceil((top + this.scroller.clientHeight) / height) + OVERSCAN);
    const count = Math.max(0, to - from);
    while (this.rows.childElementCount < count) this.rows.append(h("div", { class: "line" }));
    while (this.rows.childElementCount > count) this.rows.lastElementChild.remove();
    let row = this.rows.firstElementChild;
    for (let i = from; i < to; i += 1, row = row.nextElementSibling) {
      if (row.line === i && row.epoch === this.epoch) continue;
      row.line = i;
      row.epoch = this.epoch;
      row.textContent = this.text[i];
      row.className = this.system[i] ? "line sys" : "line";
      if (this.stamps[i]) row.title = utc(this.stamps[i]);
      else row.removeAttribute("title");
    }
    this.rows.style.transform = `translateY(${PAD + from * height}px)`;
  }

  // Following stops when the user scrolls away from the end, and resumes at the end.
  onScroll() {
    const s = this.scroller;
    const atEnd = s.scrollTop + s.clientHeight >= s.scrollHeight - this.rowHeight / 2;
    if (atEnd !== this.follow) {
      this.follow = atEnd;
      this.followButton.hidden = atEnd;
    }
    this.draw();
  }

  jumpToEnd() {
    this.follow = true;
    this.followButton.hidden = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.scroller.focus({ preventScroll: true }); // the button goes away: focus stays in the output
  }
}
