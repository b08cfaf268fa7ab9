// Server-sent events read from a fetch() Response. EventSource cannot POST, nor send an Authorization header, so
// the page parses the stream itself (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing).

/** Yields {id, event, data} for each event of `response`'s body; heartbeat comments are skipped. */
export async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finished = false;
  let event = { id: null, type: "message", data: [] };
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      // Split into complete lines; keep the unfinished one, and a trailing "\r" that may be half of "\r\n".
      let text = buffer + value;
      const held = text.endsWith("\r") ? "\r" : "";
      if (held) text = text.slice(0, -1);
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) yield { id: event.id, event: event.type, data: event.data.join("\n") };
          event = { id: event.id, type: "message", data: [] };
        } else if (!line.startsWith(":")) {
          // (a line starting with ":" is a comment: the server's heartbeat)
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let data = colon < 0 ? "" : line.slice(colon + 1);
          if (data.startsWith(" ")) data = data.slice(1);
          if (field === "data") event.data.push(data);
          else if (field === "event") event.type = data;
          else if (field === "id" && !data.includes("\0")) event.id = data;
        }
      }
    }
  } finally {
    // Leaving early (the caller stopped reading) closes the connection; the run itself goes on on the server.
    if (!finished) await reader.cancel().catch(() => {});
  }
}
