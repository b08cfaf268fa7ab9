// A thread whose graph keeps no chat history (`messages: false` in GET /agents): the page shows the thread's state
// (GET /v1/threads/{id}/state) instead of a message log, and the composer takes a run's `input` as JSON. Values are
// shown as formatted JSON in a text node: whatever a graph puts in its state is never read as markup.

import { h } from "./dom.js";

/** Show `state` ({values, next, interrupts}) at the top of `root`, replacing the welcome or an older state. */
export function showState(root, state) {
  root.querySelector(".welcome, .empty, .graph-state")?.remove();
  const values = state?.values ?? {};
  const empty = Object.keys(values).length === 0;
  const section = h(
    "section",
    { class: "graph-state", "aria-label": "Thread state" },
    h("h2", {}, "State"),
    empty
      ? h("p", { class: "muted" }, "Nothing yet. Write the run's input below as JSON, e.g. {\"key\": \"value\"}.")
      : h("pre", { class: "state-values" }, JSON.stringify(values, null, 2)),
    state?.next?.length ? h("p", { class: "muted state-next" }, `Next: ${state.next.join(", ")}`) : null,
  );
  root.prepend(section);
}

/** The composer's text as a run's input: {value} or {error} (a message for the person typing). */
export function parseInput(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `The input is not valid JSON: ${err.message}` };
  }
}
