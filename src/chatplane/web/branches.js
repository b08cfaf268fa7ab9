// Versions of a thread's messages (docs/branches.md): edit a message, regenerate an answer, move between versions
// ("‹ 2 / 3 ›"), fork into a new chat. The current branch comes from GET /v1/threads/{id}/branch; every change is
// made by the server, then the thread is shown again as the server has it — so a reload shows the same branch.

import { h, icon } from "./dom.js";

const enc = encodeURIComponent;

export class Branches {
  /**
   * `api()`: the API client; `onChanged()`: show the thread again; `onForked(thread)`: open a new thread;
   * `onError(err)`; `isBusy()`: a run is streaming (no changes meanwhile).
   */
  constructor({ api, onChanged, onForked, onError, isBusy }) {
    this.api = api;
    this.onChanged = onChanged;
    this.onForked = onForked;
    this.onError = onError;
    this.isBusy = isBusy;
  }

  /** Give each shown message of `root` its id on the server and its controls (the branch, fetched now). */
  async decorate(root, threadId) {
    const branch = await this.api().get(`/v1/threads/${enc(threadId)}/branch`);
    const items = branch.messages.filter(
      (item) => item.message.role === "user" || (item.message.role === "assistant" && item.message.content),
    );
    const shown = [...root.querySelectorAll("article.msg.user, article.msg.assistant")];
    if (shown.length !== items.length) return; // the page shows something else than the branch: leave it be
    shown.forEach((el, n) => {
      el.dataset.messageId = items[n].message.id;
      this.controls(el, items[n], threadId);
    });
  }

  controls(el, item, threadId) {
    el.querySelector(".branch-bar")?.remove();
    const { message, siblings } = item;
    const user = message.role === "user";
    // Icons, not words, on the buttons: a message's text stays its text (the arrows only where there are versions).
    const button = (label, content, onclick) =>
      h("button", { type: "button", class: "branch-action", "aria-label": label, title: label, onclick }, content);
    const versions = siblings
      ? [
          button("Previous version", "‹", () => this.act(() => this.move(threadId, siblings, -1))),
          h("span", { class: "branch-count" }, `${siblings.index + 1} / ${siblings.count}`),
          button("Next version", "›", () => this.act(() => this.move(threadId, siblings, 1))),
        ]
      : [];
    const actions = user
      ? [button("Edit message", icon("pencil"), () => this.startEdit(el, message, threadId))]
      : [
          button("Regenerate answer", icon("regenerate"), () =>
            this.act(() => this.api().post(`/v1/threads/${enc(threadId)}/messages/${enc(message.id)}/regenerate`, {})),
          ),
          button("Fork from here", icon("fork"), () => this.fork(threadId, message.id)),
        ];
    el.append(h("div", { class: "branch-bar" }, versions, actions));
  }

  async move(threadId, siblings, step) {
    const index = (siblings.index + step + siblings.count) % siblings.count;
    await this.api().post(`/v1/threads/${enc(threadId)}/branch`, { message_id: siblings.message_ids[index] });
  }

  startEdit(el, message, threadId) {
    if (this.isBusy() || el.querySelector(".branch-edit")) return;
    const area = h("textarea", { class: "branch-edit-text", "aria-label": "Edited message", rows: "3" });
    area.value = message.content;
    const form = h(
      "form",
      {
        class: "branch-edit",
        onsubmit: (event) => {
          event.preventDefault();
          const text = area.value.trim();
          if (!text) return;
          this.act(() =>
            this.api().post(`/v1/threads/${enc(threadId)}/messages/${enc(message.id)}/edit`, { message: text }),
          );
        },
      },
      area,
      h("button", { type: "submit", class: "primary" }, "Save and send"),
      h("button", { type: "button", onclick: () => form.remove() }, "Cancel"),
    );
    el.append(form);
    area.focus();
  }

  async fork(threadId, messageId) {
    if (this.isBusy()) return;
    try {
      this.onForked(await this.api().post(`/v1/threads/${enc(threadId)}/fork`, { message_id: messageId }));
    } catch (err) {
      this.onError(err);
    }
  }

  /** Make a change (unless a run streams), then show the thread as the server has it. */
  async act(change) {
    if (this.isBusy() || this.pending) return;
    this.pending = true;
    document.body.classList.add("branching");
    try {
      await change();
      await this.onChanged();
    } catch (err) {
      this.onError(err);
    } finally {
      this.pending = false;
      document.body.classList.remove("branching");
    }
  }
}
