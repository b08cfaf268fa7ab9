// The message log of one thread: history, then a run's live events on top. Every element is keyed by the id the
// API gives it (message id, tool call id), so replaying a run's events over history that already holds part of it
// (after a reload) changes nothing that is already there and completes what is missing.

import { h, icon } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

export class Conversation {
  /** `scroller`: the element that scrolls; `root`: where messages go; `onDecide(runId, decisions)` → Promise. */
  constructor(scroller, root, { onDecide }) {
    this.scroller = scroller;
    this.root = root;
    this.onDecide = onDecide;
    this.reset();
  }

  reset() {
    this.root.replaceChildren();
    this.messages = new Map(); // message id → {el, body, text, complete, runId}
    this.tools = new Map(); // tool call id → {el, state, result}
    this.approvals = new Map(); // run id → the approval card waiting for a decision
    this.lastSpeaker = null;
    this.dirty = new Set();
    this.frame = null;
    this.typing = null;
  }

  // --- the start of a new chat --------------------------------------------------------------------------------
  /** `choices`: [{value, label, description}] (see AgentCatalog.choices); `onSelect(value)` on a change. */
  showWelcome(choices, selected, onSelect) {
    const options = choices.map((choice) =>
      h(
        "label",
        { class: "agent-option" },
        h("input", {
          type: "radio",
          name: "agent",
          value: choice.value,
          checked: choice.value === selected,
          onchange: () => onSelect(choice.value),
        }),
        h("span", { class: "agent-name" }, choice.label),
        h("span", { class: "agent-desc" }, choice.description),
      ),
    );
    this.root.append(
      h(
        "section",
        { class: "welcome" },
        h("h2", {}, "Start a new chat"),
        h("p", { class: "muted" }, "Choose an agent, then write your message below."),
        h("fieldset", { class: "agent-picker" }, h("legend", { class: "sr-only" }, "Agent"), options),
      ),
    );
  }

  showEmpty() {
    this.root.append(h("p", { class: "empty muted" }, "No messages yet. Say hello below."));
  }

  // --- history ------------------------------------------------------------------------------------------------
  showHistory(messages, defaultSpeaker) {
    this.withScroll(() => {
      for (const m of messages) {
        if (m.role === "user") {
          this.addUser(m.content, m.id);
        } else if (m.role === "assistant") {
          const speaker = m.name || defaultSpeaker;
          if (m.content) this.finishMessage(m.id, speaker, m.content, m.status);
          for (const call of m.tool_calls ?? []) this.addToolCall(call.id, call.name, call.args, speaker);
        } else if (m.role === "tool") {
          this.setToolResult(m.tool_call_id, m.name, m.content, m.status ?? "success");
        }
      }
    }, true);
  }

  // --- the user's messages ------------------------------------------------------------------------------------
  /** The user's message; `id` null for one being sent (see markUnsent). */
  addUser(text, id = null) {
    this.root.querySelector(".welcome, .empty")?.remove();
    this.lastSpeaker = null;
    const el = h(
      "article",
      { class: "msg user", dataset: id ? { messageId: id } : {} },
      h("div", { class: "content" }, text),
    );
    this.withScroll(() => this.root.append(el), true);
    return el;
  }

  /** The user's message with this id, unless it is already shown. */
  addUserOnce(id, text) {
    if (this.root.querySelector(`[data-message-id="${CSS.escape(id)}"]`)) return;
    this.addUser(text, id);
  }

  markUnsent(el) {
    el.classList.add("unsent");
    el.append(h("div", { class: "note" }, "Not sent"));
  }

  // --- a run's events -----------------------------------------------------------------------------------------
  event(event) {
    const data = event.data ?? {};
    switch (event.type) {
      case "run_started":
        // The run's own user message, if the server sends it (the thread's history may not hold it yet).
        if (data.message?.content) this.addUserOnce(data.message.id ?? `msg-${event.run_id}`, data.message.content);
        break;
      case "token":
        this.addToken(data.message_id ?? `partial:${event.run_id}`, data.agent, data.text, event.run_id);
        break;
      case "retract":
        // The model attempt that streamed this text failed and is tried again: its text is void.
        this.retract(data.message_id ?? `partial:${event.run_id}`);
        break;
      case "message": {
        const m = data.message;
        if (m?.role !== "assistant") break;
        const partial = this.messages.get(`partial:${event.run_id}`);
        if (partial && m.id && !this.messages.has(m.id)) {
          this.messages.delete(`partial:${event.run_id}`);
          this.messages.set(m.id, partial);
        }
        if (m.content) this.finishMessage(m.id ?? `partial:${event.run_id}`, m.name, m.content, m.status);
        else this.dropEmpty(m.id);
        break;
      }
      case "tool_call":
        this.addToolCall(data.id, data.name, data.args, data.agent, event.run_id);
        break;
      case "tool_result":
        this.setToolResult(data.tool_call_id, data.name, data.content, data.status);
        break;
      case "handoff":
        if (this.lastSpeaker === null) this.lastSpeaker = data.from;
        this.speak(data.to);
        break;
      case "interrupt":
        this.addApproval(event.run_id, data.requests ?? []);
        break;
      case "run_resumed":
        this.resolveApproval(event.run_id, data.decisions ?? []);
        break;
      case "run_completed":
      case "run_failed":
      case "run_cancelled":
        this.endRun(event.run_id, event.type);
        break;
      default:
        break;
    }
    if (event.type !== "run_started" && event.type !== "run_resumed") this.setTyping(false);
  }

  /** The "…" shown while the agent has not said anything yet. */
  setTyping(on) {
    if (on && !this.typing) {
      this.typing = h(
        "div",
        { class: "typing", role: "status", "aria-label": "The agent is working" },
        h("span"),
        h("span"),
        h("span"),
      );
      this.withScroll(() => this.root.append(this.typing));
    } else if (!on && this.typing) {
      this.typing.remove();
      this.typing = null;
    }
  }

  /** The agent named `speaker` says something: mark the hand-off if someone else spoke last. */
  speak(speaker) {
    if (!speaker) return;
    if (this.lastSpeaker !== null && this.lastSpeaker !== speaker) {
      this.insert(
        h(
          "div",
          { class: "handoff", role: "note" },
          h("span", { class: "who" }, this.lastSpeaker),
          icon("handoff"),
          h("span", { class: "who" }, speaker),
        ),
      );
    }
    this.lastSpeaker = speaker;
  }

  messageEntry(id, speaker, runId = null) {
    let entry = this.messages.get(id);
    if (!entry) {
      this.speak(speaker);
      const body = h("div", { class: "content markdown" });
      const el = h(
        "article",
        { class: "msg assistant", dataset: { messageId: id } },
        speaker ? h("header", { class: "speaker" }, speaker) : null,
        body,
      );
      entry = { el, body, text: "", complete: false, runId };
      this.messages.set(id, entry);
      this.insert(el);
    }
    return entry;
  }

  addToken(id, speaker, text, runId) {
    const known = this.messages.get(id);
    if (known?.complete || !text) return;
    const entry = known ?? this.messageEntry(id, speaker, runId);
    entry.el.setAttribute("aria-busy", "true");
    entry.el.classList.add("streaming");
    entry.text += text;
    this.scheduleRender(entry);
  }

  finishMessage(id, speaker, content, status) {
    const entry = this.messageEntry(id, speaker);
    entry.text = content;
    entry.complete = true;
    entry.el.removeAttribute("aria-busy");
    entry.el.classList.remove("streaming");
    if (status === "cancelled") this.markStopped(entry);
    this.render(entry);
  }

  /** Drop a streamed message's bubble that a failed model attempt left (the retry streams a new one). */
  retract(id) {
    const entry = this.messages.get(id);
    if (!entry || entry.complete) return;
    this.dirty.delete(entry);
    entry.el.remove();
    this.messages.delete(id);
  }

  dropEmpty(id) {
    const entry = this.messages.get(id);
    if (entry && !entry.text.trim()) {
      entry.el.remove();
      this.messages.delete(id);
    }
  }

  markStopped(entry) {
    if (!entry.el.querySelector(".note")) {
      entry.el.classList.add("stopped");
      entry.el.append(h("footer", { class: "note" }, "Stopped"));
    }
  }

  endRun(runId, type) {
    for (const entry of this.messages.values()) {
      if (entry.complete || entry.runId !== runId) continue;
      entry.complete = true;
      entry.el.removeAttribute("aria-busy");
      entry.el.classList.remove("streaming");
      if (type === "run_cancelled") this.markStopped(entry);
      this.render(entry);
    }
    for (const tool of this.tools.values()) {
      if (tool.result !== null || tool.runId !== runId) continue;
      tool.setState(type === "run_cancelled" ? "cancelled" : "no result");
    }
    const card = this.approvals.get(runId);
    if (card) this.closeApproval(card, type === "run_cancelled" ? "Cancelled" : "Closed");
  }

  // --- tool calls -----------------------------------------------------------------------------------------------
  addToolCall(id, name, args, speaker, runId = null) {
    if (this.tools.has(id)) return;
    this.speak(speaker);
    const state = h("span", { class: "tool-state" }, "running…");
    const result = h("div", { class: "tool-result", hidden: true });
    const el = h(
      "details",
      { class: "tool", dataset: { toolCallId: id ?? "" } },
      h(
        "summary",
        {},
        icon("tool"),
        h("span", { class: "tool-name" }, name),
        h("span", { class: "tool-brief" }, brief(args)),
        state,
      ),
      h(
        "div",
        { class: "tool-body" },
        h("div", { class: "tool-label" }, "Arguments"),
        h("pre", { class: "tool-args" }, JSON.stringify(args ?? {}, null, 2)),
        result,
      ),
    );
    const tool = {
      el,
      runId,
      result: null,
      resultEl: result,
      setState(text, kind = "") {
        state.textContent = text;
        state.className = `tool-state ${kind}`;
      },
    };
    this.tools.set(id, tool);
    this.insert(el);
  }

  setToolResult(id, name, content, status) {
    if (!this.tools.has(id)) this.addToolCall(id, name, {}, null);
    const tool = this.tools.get(id);
    tool.result = content;
    const failed = status && status !== "success";
    tool.setState(failed ? "error" : "done", failed ? "error" : "ok");
    tool.resultEl.replaceChildren(
      h("div", { class: "tool-label" }, failed ? "Error" : "Result"),
      h("pre", { class: `tool-output${failed ? " error" : ""}` }, content ?? ""),
    );
    tool.resultEl.hidden = false;
  }

  // --- human in the loop ----------------------------------------------------------------------------------------
  addApproval(runId, requests) {
    if (this.approvals.has(runId)) return;
    const actions = requests.flatMap((r) => r.value?.action_requests ?? []);
    const buttons = [
      h("button", { type: "button", class: "primary", onclick: () => decide("approve") }, "Approve"),
      h("button", { type: "button", class: "danger-outline", onclick: () => decide("reject") }, "Reject"),
    ];
    const reason = h("input", {
      type: "text",
      class: "reason",
      placeholder: "Reason (optional, told to the agent)",
      "aria-label": "Reason for rejecting",
    });
    const status = h("p", { class: "approval-status", role: "status" });
    const card = h(
      "section",
      { class: "approval", role: "group", "aria-label": "Approval needed" },
      h("h3", {}, "Approval needed"),
      h("p", { class: "muted" }, `The agent wants to run ${actions.length > 1 ? "these tools" : "a tool"}:`),
      actions.map((a) =>
        h(
          "div",
          { class: "action" },
          h("code", { class: "tool-name" }, a.name),
          h("pre", { class: "tool-args" }, JSON.stringify(a.args ?? {}, null, 2)),
        ),
      ),
      reason,
      h("div", { class: "approval-buttons" }, buttons),
      status,
    );
    const decide = async (type) => {
      const decision = { type };
      if (type === "reject") decision.message = reason.value.trim() || "The user rejected this tool call.";
      for (const b of buttons) b.disabled = true;
      try {
        await this.onDecide(runId, actions.map(() => ({ ...decision })));
      } catch {
        for (const b of buttons) b.disabled = false; // the banner says why
      }
    };
    this.approvals.set(runId, card);
    this.insert(card);
    buttons[0].focus({ preventScroll: true });
  }

  resolveApproval(runId, decisions) {
    const card = this.approvals.get(runId);
    if (!card) return;
    const types = new Set(decisions.map((d) => d.type));
    this.closeApproval(card, types.size === 1 && types.has("reject") ? "Rejected" : "Approved");
  }

  closeApproval(card, outcome) {
    for (const control of card.querySelectorAll("button, input")) control.disabled = true;
    card.classList.add("decided");
    const status = card.querySelector(".approval-status");
    status.textContent = outcome;
    status.classList.add(outcome === "Approved" ? "ok" : "refused");
    for (const [runId, c] of this.approvals) if (c === card) this.approvals.delete(runId);
  }

  // --- rendering ------------------------------------------------------------------------------------------------
  insert(el) {
    this.withScroll(() => {
      if (this.typing) this.root.insertBefore(el, this.typing);
      else this.root.append(el);
    });
  }

  scheduleRender(entry) {
    this.dirty.add(entry);
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      const dirty = [...this.dirty];
      this.dirty.clear();
      this.withScroll(() => dirty.forEach((e) => this.renderBody(e)));
    });
  }

  render(entry) {
    this.dirty.delete(entry);
    this.withScroll(() => this.renderBody(entry));
  }

  renderBody(entry) {
    entry.body.replaceChildren(renderMarkdown(entry.text));
  }

  /** Run `change`; keep the view pinned to the bottom if it was there (or `force`). */
  withScroll(change, force = false) {
    const s = this.scroller;
    const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    change();
    if (atBottom || force) s.scrollTop = s.scrollHeight;
  }
}

/** A one-line summary of a tool call's arguments: `6*7`, `Europe/Paris`, `query: "x", limit: 3`. */
function brief(args) {
  const values = Object.entries(args ?? {});
  if (values.length === 0) return "";
  const text =
    values.length === 1 && typeof values[0][1] !== "object"
      ? String(values[0][1])
      : values.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ");
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
