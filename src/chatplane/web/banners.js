// Error banners: one per kind of problem, worded for people, with the server's own (safe) message underneath.

import { h, icon } from "./dom.js";

const EXPLAIN = {
  rate_limited: ["Rate limited", "Too many requests for now."],
  model_error: ["Model unavailable", "The model could not answer. Your message was kept: send it again to retry."],
  model_timeout: ["Model timed out", "The model took too long. Your message was kept: send it again to retry."],
  storage_unavailable: ["Service unavailable", "The server cannot reach its database. Try again in a moment."],
  thread_busy: ["Still answering", "This chat is still working on a message. Wait for it, or press Stop."],
  connection_lost: ["Connection lost", "The server cannot be reached. Check that it is running, then try again."],
  run_limit: ["Too many steps", "The agent needed more steps than it is allowed for one message."],
  request_too_large: ["Message too long", "That message is larger than the server accepts."],
  invalid_request: ["Not accepted", "The server did not accept that."],
  thread_not_found: ["Chat not found", "This chat no longer exists."],
  internal_error: ["Something went wrong", "The server hit an unexpected error."],
};

export class Banners {
  constructor(root) {
    this.root = root;
    this.timers = new Map();
  }

  /** Show `error` (an ApiError, or {code, message, retryAfter}); replaces an earlier banner of the same code. */
  show(error) {
    const code = error.code ?? "internal_error";
    const [title, text] = EXPLAIN[code] ?? ["Something went wrong", ""];
    this.dismiss(code);
    const detail = error.message && error.message !== text ? error.message : null;
    const retry = h("p", { class: "retry" });
    const close = h(
      "button",
      { type: "button", class: "icon-button", "aria-label": `Dismiss “${title}”`, onclick: () => this.dismiss(code) },
      icon("close"),
    );
    const banner = h(
      "div",
      { class: `banner banner-${code}`, role: "alert", dataset: { code } },
      h(
        "div",
        { class: "banner-text" },
        h("strong", {}, title),
        text ? h("p", {}, text) : null,
        detail ? h("p", { class: "detail" }, detail) : null,
        retry,
      ),
      close,
    );
    this.root.append(banner);
    if (error.retryAfter) this.countdown(code, retry, error.retryAfter);
    return banner;
  }

  countdown(code, el, seconds) {
    const until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        el.textContent = `You can try again in ${left} s.`;
        this.timers.set(code, setTimeout(tick, 1000));
      } else {
        el.textContent = "You can try again now.";
        this.timers.delete(code);
      }
    };
    tick();
  }

  dismiss(code) {
    clearTimeout(this.timers.get(code));
    this.timers.delete(code);
    this.root.querySelector(`[data-code="${CSS.escape(code)}"]`)?.remove();
  }

  clear() {
    for (const code of [...this.timers.keys()]) this.dismiss(code);
    this.root.replaceChildren();
  }
}
