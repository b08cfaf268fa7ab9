// A small chat page on LangGraph's own React hook, `useStream`, pointed at a chatplane server.
// Query string: ?api=<server URL>&assistant=<graph or assistant id>[&thread=<id>] — the page keeps the thread in
// its URL, so a reload finds it again and `reconnectOnMount` re-joins the run that was streaming.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/langgraph-sdk/react";

const params = new URLSearchParams(window.location.search);
const apiUrl = params.get("api") ?? window.location.origin;
const assistantId = params.get("assistant") ?? "chat";

function rememberThread(threadId) {
  const url = new URL(window.location.href);
  url.searchParams.set("thread", threadId);
  window.history.replaceState(null, "", url);
}

function messageText(message) {
  if (typeof message.content === "string") return message.content;
  return (message.content ?? []).map((part) => (typeof part === "string" ? part : part.text ?? "")).join("");
}

function messageType(message) {
  return typeof message.getType === "function" ? message.getType() : message.type;
}

function App() {
  const [threadId, setThreadId] = useState(params.get("thread"));
  const [text, setText] = useState("");
  const stream = useStream({
    apiUrl,
    assistantId,
    threadId,
    onThreadId: (id) => {
      setThreadId(id);
      rememberThread(id);
    },
    reconnectOnMount: true,
  });
  const values = stream.values ?? {};

  const send = (event) => {
    event.preventDefault();
    const input = assistantId === "approval" ? { request: text } : { messages: [{ type: "human", content: text }] };
    stream.submit(input, { streamSubgraphs: true });
    setText("");
  };

  return (
    <main id="app" data-loading={String(stream.isLoading)} data-thread={threadId ?? ""}>
      <h1>useStream on chatplane</h1>
      <ol id="messages">
        {stream.messages.map((message, i) => (
          <li key={message.id ?? i} className={`msg ${messageType(message)}`}>
            {messageText(message)}
          </li>
        ))}
      </ol>
      {"done" in values && <p id="done">done: {String(values.done)} · decision: {String(values.decision)}</p>}
      {stream.interrupt && (
        <section id="interrupt">
          <p className="question">{stream.interrupt.value?.question ?? JSON.stringify(stream.interrupt.value)}</p>
          <button onClick={() => stream.submit(undefined, { command: { resume: "yes" }, streamSubgraphs: true })}>
            Approve
          </button>
        </section>
      )}
      {stream.error && <p id="error">{String(stream.error?.message ?? stream.error)}</p>}
      <form onSubmit={send}>
        <input aria-label="Message" value={text} onChange={(event) => setText(event.target.value)} />
        <button type="submit" disabled={stream.isLoading}>
          Send
        </button>
      </form>
      <p id="status">{stream.isLoading ? "streaming" : "idle"}</p>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
