// The Memories panel: what the assistants remember about the signed-in user (their long-term store items, via
// /v1/store) — listed newest first, searched by meaning, deleted one by one.

import { h } from "./dom.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 100;

function text(value) {
  return typeof value.content === "string" ? value.content : JSON.stringify(value);
}

export class MemoriesPanel {
  /** `api()`: the page's current Api (its key changes as the user signs in and out). */
  constructor(api) {
    this.api = api;
    this.dialog = $("memories");
    this.list = $("memory-list");
    this.query = $("memories-query");
    this.error = $("memories-error");
    this.empty = $("memories-empty");
    $("open-memories").addEventListener("click", () => this.open());
    $("close-memories").addEventListener("click", () => this.dialog.close());
    $("memories-search").addEventListener("submit", (e) => {
      e.preventDefault();
      this.load(this.query.value.trim());
    });
  }

  async open() {
    this.query.value = "";
    this.dialog.showModal();
    await this.load("");
  }

  async load(query) {
    const body = { namespace_prefix: [], limit: LIMIT };
    if (query) body.query = query;
    this.error.hidden = true;
    try {
      const { items } = await this.api().post("/v1/store/items/search", body);
      this.render(items);
    } catch (err) {
      this.fail(err);
    }
  }

  render(items) {
    this.list.replaceChildren(...items.map((item) => this.row(item)));
    this.empty.hidden = items.length > 0;
  }

  row(item) {
    const li = h(
      "li",
      { class: "memory", dataset: { key: item.key } },
      h("div", { class: "memory-text" }, text(item.value)),
      h("div", { class: "memory-meta" }, item.namespace.join(" / "), " · ", new Date(item.updated_at).toLocaleString()),
    );
    const remove = h("button", { type: "button", class: "small", "aria-label": `Delete memory ${item.key}` }, "Delete");
    remove.addEventListener("click", () => this.remove(item, li));
    li.append(remove);
    return li;
  }

  async remove(item, li) {
    try {
      await this.api().request("DELETE", "/v1/store/items", { body: { namespace: item.namespace, key: item.key } });
      li.remove();
      this.empty.hidden = this.list.children.length > 0;
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err) {
    this.error.textContent = err.message ?? "Something went wrong.";
    this.error.hidden = false;
  }
}
