// The chat page: sign-in, the thread list, one conversation at a time, and the run being streamed into it.
//
// State that survives a reload: the API key (localStorage), the open thread and the run being watched with its last
// event id (sessionStorage). On load the page re-opens that thread, asks whether the run is still active, and
// re-attaches to its event stream: from the first event, because the page's DOM is new and the answer so far has to
// be rebuilt (elements are keyed by message and tool-call ids, so what history already shows is not doubled). While
// the page stays open, a dropped stream resumes after the last event id instead.

import { Api, ApiError } from "./api.js";
import { Banners } from "./banners.js";
import { Branches } from "./branches.js";
import { Conversation } from "./conversation.js";
import { AgentCatalog } from "./agents.js";
import { closeDrawer, isPhone } from "./drawer.js";
import { MemoriesPanel } from "./memories.js";
import { parseInput, showState } from "./graphstate.js";
import { ACTIVE_STATUSES, followRun } from "./runs.js";
import { SignIn, showAccount } from "./signin.js";
import { store } from "./store.js";
import { ThreadList, threadTitle } from "./threads.js";

const $ = (id) => document.getElementById(id);
const ui = {
  loading: $("loading"),
  signin: $("signin"),
  app: $("app"),
  newChat: $("new-chat"),
  moreThreads: $("more-threads"),
  signOut: $("sign-out"),
  title: $("title"),
  agentBadge: $("agent-badge"),
  log: $("log"),
  composer: $("composer"),
  input: $("input"),
  inputError: $("composer-error"),
  hint: $("composer-hint"),
  send: $("send"),
  stop: $("stop"),
  stopLabel: $("stop-label"),
};

const state = {
  api: new Api({ key: store.apiKey(), onUnauthorized }),
  catalog: new AgentCatalog(), // the graphs of GET /agents, then the user's own assistants
  nextCursor: null,
  thread: null, // the open thread; null while starting a new chat
  draftAgent: null, // the agent picked for the new chat
  run: null, // the run followed in this view: {threadId, runId, lastEventId, controller, paused, stopping, ...}
  view: 0, // bumped whenever the view changes: async work for an older view drops its results
};

const banners = new Banners($("banners"));
new MemoriesPanel(() => state.api); // eslint-disable-line no-new
const conversation = new Conversation(ui.log, $("messages"), { onDecide: decide });
const signIn = new SignIn({
  onSignedIn: async (key) => {
    store.setApiKey(key);
    state.api.key = key;
    await boot();
  },
});
const threads = new ThreadList($("thread-list"), {
  onOpen: (thread) => openThread(thread),
  onRename: renameThread,
  onDelete: deleteThread,
  agentLabel: (agent) => state.catalog.resolve(agent).label,
});
const branches = new Branches({
  api: () => state.api,
  onChanged: () => (state.thread ? openThread(state.thread, { focus: false }) : null),
  onForked: (thread) => {
    threads.upsert(thread);
    return openThread(thread);
  },
  onError: (err) => showError(err),
  isBusy: () => Boolean(state.run),
});

// --- start-up and signing in ------------------------------------------------------------------------------------
async function boot() {
  ui.loading.textContent = "Loading…";
  showScreen("loading");
  try {
    const [agents, assistants, page] = await Promise.all([
      state.api.get("/agents"),
      state.api.get("/v1/assistants").catch((err) => (err.status === 401 ? Promise.reject(err) : [])),
      state.api.get("/v1/threads?limit=50"),
    ]);
    state.catalog = new AgentCatalog(agents.agents, assistants);
    state.draftAgent ??= state.catalog.choices()[0]?.value ?? "chat";
    state.nextCursor = page.next_cursor;
    threads.set(page.threads);
    ui.moreThreads.hidden = !state.nextCursor;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // onUnauthorized shows the sign-in form
    showScreen("loading");
    ui.loading.replaceChildren(
      "The server cannot be reached right now. ",
      Object.assign(document.createElement("button"), { type: "button", textContent: "Try again", onclick: boot }),
    );
    return;
  }
  showAccount(state.api.key);
  showScreen("app");
  const savedId = store.threadId();
  const saved = savedId && (threads.find(savedId) ?? (await fetchThread(savedId)));
  if (saved) await openThread(saved, { focus: false });
  else newChat({ focus: false });
}

async function fetchThread(threadId) {
  try {
    return await state.api.get(`/v1/threads/${encodeURIComponent(threadId)}`);
  } catch {
    store.setThreadId(null);
    return null;
  }
}

function onUnauthorized() {
  if (!ui.signin.hidden) return; // another request of the same moment already signed us out
  const hadKey = Boolean(state.api.key);
  leaveView();
  store.setApiKey(null);
  state.api.key = null;
  showSignIn(hadKey);
}

function showSignIn(signedOut) {
  signIn.reset(signedOut);
  showScreen("signin");
  signIn.focus();
}

ui.signOut.addEventListener("click", () => {
  leaveView();
  store.setApiKey(null);
  store.setThreadId(null);
  store.setRun(null);
  state.api.key = null;
  boot(); // a local development server lets us straight back in; any other asks for a key
});

function showScreen(name) {
  ui.loading.hidden = name !== "loading";
  ui.signin.hidden = name !== "signin";
  ui.app.hidden = name !== "app";
}

// --- threads --------------------------------------------------------------------------------------------------------
ui.moreThreads.addEventListener("click", async () => {
  try {
    const page = await state.api.get(`/v1/threads?limit=50&cursor=${encodeURIComponent(state.nextCursor)}`);
    threads.set([...threads.threads, ...page.threads]);
    state.nextCursor = page.next_cursor;
    ui.moreThreads.hidden = !state.nextCursor;
  } catch (err) {
    showError(err);
  }
});

/** Leave whatever was on screen: stop following its run (the run goes on on the server) and clear the log. */
function leaveView() {
  state.run?.controller.abort();
  state.run = null;
  conversation.reset();
  banners.clear();
  setBusy(false);
  return ++state.view;
}

function newChat({ focus = true } = {}) {
  leaveView();
  state.thread = null;
  store.setThreadId(null);
  threads.select(null);
  setHeader("New chat", null);
  conversation.showWelcome(state.catalog.choices(), state.draftAgent, (name) => {
    state.draftAgent = name;
    setComposerMode();
  });
  setComposerMode();
  closeDrawer();
  if (focus) ui.input.focus();
}

async function openThread(thread, { focus = true } = {}) {
  const view = leaveView();
  state.thread = thread;
  store.setThreadId(thread.thread_id);
  threads.select(thread.thread_id);
  setHeader(threadTitle(thread), thread.agent);
  closeDrawer();
  setComposerMode();
  if (focus && !isPhone()) ui.input.focus();
  try {
    if (isGraph(thread.agent)) {
      await refreshState(thread.thread_id, view);
    } else {
      const messages = await loadMessages(thread.thread_id);
      if (view !== state.view) return;
      if (messages.length) conversation.showHistory(messages, state.catalog.resolve(thread.agent).label);
      else conversation.showEmpty();
      if (messages.length) await decorateBranches(thread.thread_id, view);
    }
    const run = await findActiveRun(thread.thread_id);
    // A message sent while the thread was loading is followed already (its run is the one found): no second follower.
    if (view !== state.view || !run || state.run) return;
    // The server keeps a run's user message out of the thread's history until the run ends (it checkpoints once
    // per run); the message this tab sent is remembered, under the id the server gives it ("msg-<run id>").
    const saved = store.run();
    const message = saved?.runId === run.run_id ? saved.message : null;
    if (message) conversation.addUserOnce(`msg-${run.run_id}`, message);
    await follow({ threadId: thread.thread_id, runId: run.run_id, after: 0, message });
  } catch (err) {
    if (view !== state.view) return;
    if (err.code === "thread_not_found") {
      threads.remove(thread.thread_id);
      newChat();
    }
    showError(err);
  }
}

/** Edit, regenerate, versions and fork on the shown messages (branches.js); a failure leaves them plain. */
async function decorateBranches(threadId, view = state.view) {
  try {
    if (view !== state.view || state.thread?.thread_id !== threadId) return;
    await branches.decorate(conversation.root, threadId);
  } catch {
    // the messages stay as they are, without their controls
  }
}

/** The thread's graph keeps no messages: it shows its state and takes JSON input. */
function isGraph(agent) {
  return !state.catalog.resolve(agent).messages;
}

async function refreshState(threadId, view = state.view) {
  const values = await state.api.get(`/v1/threads/${encodeURIComponent(threadId)}/state`);
  if (view === state.view && state.thread?.thread_id === threadId) showState(conversation.root, values);
}

async function loadMessages(threadId) {
  const messages = [];
  let cursor = null;
  do {
    const query = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await state.api.get(`/v1/threads/${encodeURIComponent(threadId)}/messages?${query}`);
    messages.push(...page.messages);
    cursor = page.next_cursor;
  } while (cursor);
  return messages;
}

/** The thread's run still in progress (or waiting for a human), if any: the one this tab watched, or the API's. */
async function findActiveRun(threadId) {
  const saved = store.run();
  if (saved?.threadId === threadId) {
    try {
      const run = await state.api.get(`/v1/runs/${encodeURIComponent(saved.runId)}`);
      if (ACTIVE_STATUSES.has(run.status)) return run;
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    store.setRun(null);
  }
  const runs = await state.api.get(`/v1/threads/${encodeURIComponent(threadId)}/runs`);
  const started = runs.find((r) => r.status === "running" || r.status === "waiting");
  return started ?? runs.find((r) => ACTIVE_STATUSES.has(r.status)) ?? null;
}

async function renameThread(thread, title) {
  try {
    const updated = await state.api.patch(`/v1/threads/${encodeURIComponent(thread.thread_id)}`, { title });
    threads.upsert(updated);
    if (state.thread?.thread_id === updated.thread_id) {
      state.thread = updated;
      setHeader(threadTitle(updated), updated.agent);
    }
  } catch (err) {
    showError(err);
    throw err;
  }
}

async function deleteThread(thread) {
  try {
    await state.api.delete(`/v1/threads/${encodeURIComponent(thread.thread_id)}`);
  } catch (err) {
    if (err.code !== "thread_not_found") {
      showError(err);
      throw err;
    }
  }
  threads.remove(thread.thread_id);
  if (store.run()?.threadId === thread.thread_id) store.setRun(null);
  if (state.thread?.thread_id === thread.thread_id) newChat();
}

function titleFrom(text) {
  const line = text.split("\n").find((l) => l.trim()) ?? "New chat";
  const title = line.trim().replace(/\s+/g, " ");
  return title.length > 60 ? `${title.slice(0, 59)}…` : title;
}

// --- sending and following runs ---------------------------------------------------------------------------------
async function send() {
  const text = ui.input.value;
  if (!text.trim() || state.run) return;
  const graph = isGraph(state.thread?.agent ?? state.draftAgent);
  const input = graph ? parseInput(text) : null;
  showInputError(input?.error ?? null);
  if (input?.error) return;
  const view = state.view;
  banners.clear();
  const bubble = graph ? null : conversation.addUser(text);
  if (graph) conversation.root.querySelector(".welcome")?.remove();
  ui.input.value = "";
  const run = startRun(null);
  run.message = graph ? null : text;
  run.bubble = bubble; // gets the server's id for it ("msg-<run id>") as soon as the run has one
  conversation.setTyping(true);
  let accepted = false;
  try {
    let thread = state.thread;
    if (!thread) {
      thread = await state.api.post("/v1/threads", { agent: state.draftAgent, title: titleFrom(text) });
      if (view !== state.view) return;
      state.thread = thread;
      store.setThreadId(thread.thread_id);
      threads.upsert(thread);
      threads.select(thread.thread_id);
      setHeader(threadTitle(thread), thread.agent);
    }
    run.threadId = thread.thread_id;
    const response = await state.api.fetch("POST", `/v1/threads/${encodeURIComponent(thread.thread_id)}/runs/stream`, {
      body: graph ? { input: input.value } : { message: text },
      headers: { Accept: "text/event-stream" },
      signal: run.controller.signal,
    });
    accepted = true;
    await follow({ response, threadId: thread.thread_id }, run);
  } catch (err) {
    if (run.controller.signal.aborted || view !== state.view) return;
    if (!accepted) {
      if (bubble) conversation.markUnsent(bubble);
      if (!ui.input.value) ui.input.value = text; // nothing was stored: give the text back to send again
    }
    endRun(run);
    showError(err);
  }
}

function startRun(threadId, runId = null, after = 0) {
  state.run?.controller.abort(); // one follower at a time: one left behind would write into whatever is shown next
  state.run = { threadId, runId, lastEventId: after, controller: new AbortController(), paused: false };
  setBusy(true);
  return state.run;
}

/** Stream the run's events into the conversation until it ends, pauses for a human, or the view changes. */
async function follow({ response = null, threadId, runId = null, after = 0, message = null }, run = null) {
  if (!run) {
    run = startRun(threadId, runId, after);
    run.message = message;
  }
  run.paused = false;
  setBusy(true);
  if (!response) conversation.setTyping(true);
  try {
    const result = await followRun(state.api, {
      response,
      runId,
      after,
      signal: run.controller.signal,
      onEvent: (event) => onRunEvent(run, event),
    });
    if (result.outcome === "aborted") return;
    if (result.outcome === "paused") {
      run.paused = true; // waits for Approve / Reject (or Stop); the composer stays busy
      conversation.setTyping(false);
      setBusy(true);
      return;
    }
    store.setRun(null);
    endRun(run);
    if (state.thread?.thread_id === threadId && isGraph(state.thread.agent)) await refreshState(threadId);
    else if (state.thread?.thread_id === threadId) await decorateBranches(threadId);
  } catch (err) {
    if (run.controller.signal.aborted) return;
    endRun(run);
    showError(err);
  }
}

function onRunEvent(run, event) {
  run.runId = event.run_id;
  if (run.bubble && !run.bubble.dataset.messageId) run.bubble.dataset.messageId = `msg-${event.run_id}`;
  run.lastEventId = event.id;
  store.setRun({ threadId: run.threadId, runId: run.runId, lastEventId: run.lastEventId, message: run.message });
  if (run.stopRequested && !run.stopping) stop();
  conversation.event(event);
  if (event.type === "run_failed") {
    const error = event.data.error ?? {};
    showError({ code: error.code ?? "internal_error", message: error.message ?? "" });
  }
  if (event.type === "run_completed" || event.type === "run_failed" || event.type === "run_cancelled") {
    const thread = threads.find(run.threadId);
    if (thread) threads.upsert({ ...thread, updated_at: Date.now() / 1000 });
  }
}

function endRun(run) {
  conversation.setTyping(false);
  if (state.run === run) {
    state.run = null;
    setBusy(false);
  }
}

async function stop() {
  const run = state.run;
  if (!run || run.stopping) return;
  if (!run.runId) {
    run.stopRequested = true; // cancelled as soon as the run has an id (its first event)
    setBusy(true);
    return;
  }
  run.stopping = true;
  setBusy(true);
  try {
    await state.api.post(`/v1/runs/${encodeURIComponent(run.runId)}/cancel`);
    if (run.paused) {
      // Nobody is streaming a waiting run: close it here.
      conversation.endRun(run.runId, "run_cancelled");
      store.setRun(null);
      endRun(run);
    }
  } catch (err) {
    run.stopping = run.stopRequested = false;
    if (state.run === run) setBusy(true);
    showError(err);
  }
}

async function decide(runId, decisions) {
  const run = state.run;
  try {
    await state.api.post(`/v1/runs/${encodeURIComponent(runId)}/resume`, { decisions });
  } catch (err) {
    showError(err);
    throw err;
  }
  if (run && run.runId === runId) follow({ threadId: run.threadId, runId, after: run.lastEventId }, run);
}

function showError(err) {
  if (err?.status === 401) return; // already back at the sign-in form
  if (!err?.code) {
    console.error(err);
    err = { code: "internal_error", message: "The page hit an unexpected error." };
  }
  banners.show(err);
}

// --- the screen -------------------------------------------------------------------------------------------------
function setHeader(title, agent) {
  ui.title.textContent = title;
  ui.agentBadge.textContent = agent ? state.catalog.resolve(agent).label : "";
  ui.agentBadge.hidden = !agent;
  document.title = `${title} · chatplane`;
}

/** A messages agent takes a chat message; a graph without messages takes its run's input as JSON. */
function setComposerMode() {
  const graph = isGraph(state.thread?.agent ?? state.draftAgent);
  ui.input.placeholder = graph ? 'Input as JSON, e.g. {"key": "value"}' : "Message…";
  ui.hint.textContent = `${graph ? "Enter runs the graph" : "Enter to send"} · Shift+Enter for a new line`;
  showInputError(null);
}

function showInputError(message) {
  ui.inputError.textContent = message ?? "";
  ui.inputError.hidden = !message;
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  const stopping = Boolean(state.run?.stopping || state.run?.stopRequested);
  ui.stop.disabled = stopping;
  ui.stopLabel.textContent = stopping ? "Stopping…" : "Stop";
  ui.composer.classList.toggle("busy", busy);
}

ui.newChat.addEventListener("click", () => newChat());
ui.stop.addEventListener("click", stop);
ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
ui.input.addEventListener("keydown", (e) => {
  // Enter sends, Shift+Enter is a new line (and nothing is sent halfway through composing a character).
  if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});

boot();
