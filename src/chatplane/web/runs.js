// Following a run's events: from the response that started it, or by re-attaching to GET /v1/runs/{id}/stream.
// A dropped connection is picked up again with Last-Event-ID, so every event is handled exactly once.

import { ApiError } from "./api.js";
import { sseEvents } from "./sse.js";

export const ACTIVE_STATUSES = new Set(["pending", "running", "waiting"]);
const TERMINAL = new Set(["run_completed", "run_failed", "run_cancelled"]);
const RECONNECTS = 5;

/**
 * Reads the run's events until it ends ("finished") or waits for a human ("paused"), calling `onEvent(event)` for
 * each. Start from `response` (a POST …/runs/stream answer) or from `runId` + `after` (the last event id seen; 0
 * replays everything). Resolves to {outcome, runId, lastId}; outcome "aborted" when `signal` fired.
 */
export async function followRun(api, { response = null, runId = null, after = 0, signal, onEvent, onReconnect }) {
  let lastId = after;
  let attempts = 0;
  while (true) {
    let outcome = null;
    try {
      if (response === null) {
        const headers = { "Last-Event-ID": String(lastId), Accept: "text/event-stream" };
        response = await api.fetch("GET", `/v1/runs/${encodeURIComponent(runId)}/stream`, { headers, signal });
      }
      for await (const sse of sseEvents(response)) {
        const event = JSON.parse(sse.data);
        // Already handled (never expected: the server replays after lastId) — but a run's end may come again when
        // re-attaching past it, and id 0 is an outcome read from the run's record, outside the numbering.
        if (event.id !== 0 && event.id <= lastId && !TERMINAL.has(event.type)) continue;
        runId = event.run_id;
        if (event.id) lastId = event.id;
        attempts = 0;
        onEvent(event);
        if (TERMINAL.has(event.type)) outcome = "finished";
        else if (event.type === "interrupt") outcome = "paused";
      }
    } catch (err) {
      if (signal?.aborted) return { outcome: "aborted", runId, lastId };
      if (err instanceof ApiError && err.status !== 0) throw err; // the server said no: nothing to retry
    }
    if (signal?.aborted) return { outcome: "aborted", runId, lastId };
    if (outcome) return { outcome, runId, lastId };
    // The stream ended early (network, proxy, server restart): re-attach after the last event we saw.
    attempts += 1;
    if (runId === null || attempts > RECONNECTS) {
      throw new ApiError(0, "connection_lost", "The connection to the server was lost.");
    }
    onReconnect?.(attempts);
    await sleep(300 * 2 ** (attempts - 1), signal);
    response = null;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
