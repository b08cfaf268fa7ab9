// What the page remembers. The API key lives in localStorage (this browser, until "Sign out"); the open thread and
// the run being watched live in sessionStorage (this tab), so a reload comes back to the same place and re-attaches.

const KEY = "chatplane.apiKey";
const THREAD = "chatplane.thread";
const RUN = "chatplane.run";

function read(storage, name) {
  try {
    return storage.getItem(name);
  } catch {
    return null; // storage disabled: the page still works, it just forgets
  }
}

function write(storage, name, value) {
  try {
    if (value === null) storage.removeItem(name);
    else storage.setItem(name, value);
  } catch {
    // storage full or disabled
  }
}

export const store = {
  apiKey: () => read(localStorage, KEY),
  setApiKey: (key) => write(localStorage, KEY, key),

  threadId: () => read(sessionStorage, THREAD),
  setThreadId: (id) => write(sessionStorage, THREAD, id),

  /** {threadId, runId, lastEventId, message} of the run this tab is watching (message: what it sent), or null. */
  run() {
    try {
      const value = JSON.parse(read(sessionStorage, RUN) ?? "null");
      return value && typeof value.runId === "string" ? value : null;
    } catch {
      return null;
    }
  },
  setRun: (run) => write(sessionStorage, RUN, run === null ? null : JSON.stringify(run)),
};
