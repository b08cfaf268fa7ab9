// The sidebar's list of threads: open, rename (inline; Enter saves, Escape cancels) and delete (with a confirm step).

import { h, icon, relativeTime } from "./dom.js";

export function threadTitle(thread) {
  return thread.title?.trim() || "Untitled chat";
}

export class ThreadList {
  /** `handlers`: onOpen(thread), onRename(thread, title) → Promise, onDelete(thread) → Promise, and
   * agentLabel(agent) → what to call a thread's agent (an assistant's name rather than its id). */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.threads = [];
    this.currentId = null;
  }

  set(threads) {
    this.threads = threads;
    this.render();
  }

  /** Add or replace `thread`; the most recently active goes first (as the API lists them). */
  upsert(thread) {
    this.threads = [thread, ...this.threads.filter((t) => t.thread_id !== thread.thread_id)];
    this.threads.sort((a, b) => b.updated_at - a.updated_at);
    this.render();
  }

  remove(threadId) {
    this.threads = this.threads.filter((t) => t.thread_id !== threadId);
    this.render();
  }

  find(threadId) {
    return this.threads.find((t) => t.thread_id === threadId) ?? null;
  }

  select(threadId) {
    this.currentId = threadId;
    for (const li of this.root.children) {
      const current = li.dataset.threadId === threadId;
      li.classList.toggle("current", current);
      li.querySelector(".thread-open")?.toggleAttribute("aria-current", current);
    }
  }

  render() {
    if (this.threads.length === 0) {
      this.root.replaceChildren(h("li", { class: "thread-empty muted" }, "No chats yet."));
      return;
    }
    this.root.replaceChildren(...this.threads.map((t) => this.item(t)));
    this.select(this.currentId);
  }

  item(thread) {
    const li = h("li", { class: "thread", dataset: { threadId: thread.thread_id } });
    const open = h(
      "button",
      { type: "button", class: "thread-open", onclick: () => this.handlers.onOpen(thread) },
      h("span", { class: "thread-title" }, threadTitle(thread)),
      h("span", { class: "thread-meta" }, `${this.handlers.agentLabel?.(thread.agent) ?? thread.agent} · ${relativeTime(thread.updated_at)}`),
    );
    const actions = h(
      "div",
      { class: "thread-actions" },
      h(
        "button",
        { type: "button", class: "icon-button", title: "Rename", "aria-label": `Rename “${threadTitle(thread)}”` },
        icon("pencil"),
      ),
      h(
        "button",
        { type: "button", class: "icon-button", title: "Delete", "aria-label": `Delete “${threadTitle(thread)}”` },
        icon("trash"),
      ),
    );
    const [renameButton, deleteButton] = actions.children;
    renameButton.addEventListener("click", () => this.startRename(li, thread));
    deleteButton.addEventListener("click", () => this.confirmDelete(li, thread));
    li.append(open, actions);
    return li;
  }

  startRename(li, thread) {
    const input = h("input", {
      type: "text",
      class: "rename",
      value: thread.title ?? "",
      maxlength: 200,
      "aria-label": "New name",
    });
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== thread.title) {
        try {
          await this.handlers.onRename(thread, title);
          return; // the list is re-rendered with the new title
        } catch {
          // the banner says why; fall through to put the old title back
        }
      }
      this.render();
      this.root.querySelector(`[data-thread-id="${CSS.escape(thread.thread_id)}"] .thread-open`)?.focus();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        finish(true);
      } else if (e.key === "Escape") {
        e.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    li.replaceChildren(h("form", { class: "rename-form", onsubmit: (e) => e.preventDefault() }, input));
    input.focus();
    input.select();
  }

  confirmDelete(li, thread) {
    const cancel = h("button", { type: "button", class: "small" }, "Cancel");
    const confirm = h("button", { type: "button", class: "small danger" }, "Delete");
    cancel.addEventListener("click", () => this.render());
    confirm.addEventListener("click", async () => {
      confirm.disabled = cancel.disabled = true;
      try {
        await this.handlers.onDelete(thread);
      } catch {
        this.render();
      }
    });
    li.replaceChildren(
      h(
        "div",
        { class: "confirm", role: "group", "aria-label": "Confirm delete" },
        h("span", {}, `Delete “${threadTitle(thread)}”?`),
        h("div", { class: "confirm-buttons" }, cancel, confirm),
      ),
    );
    cancel.focus();
  }
}
