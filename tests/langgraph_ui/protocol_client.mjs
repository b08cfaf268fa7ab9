// The thread protocol through @langchain/langgraph-sdk's own client (`client.threads.stream`), against a chatplane
// server: `CHATPLANE_KEY=cp_… node protocol_client.mjs URL sse|websocket tokens|interrupt|fork|refused` prints one
// JSON object of what it saw.
// Driven by test_protocol_client.py; Node 20 needs --experimental-websocket for WebSocket.
import { Client } from "@langchain/langgraph-sdk";

const [url, transport, scenario] = process.argv.slice(2);
const key = process.env.CHATPLANE_KEY || null;
// The WebSocket transport refuses `apiKey` (a browser's WebSocket sends no headers): in Node, a factory sends it.
const client = new Client({ apiUrl: url, apiKey: transport === "sse" ? key : null });
const webSocketFactory = key ? (address) => new WebSocket(address, { headers: { "x-api-key": key } }) : undefined;
const open = (assistantId) => client.threads.stream({ assistantId, transport, webSocketFactory });

function rootLifecycle(event, status) {
  return event.method === "lifecycle" && event.params.namespace.length === 0 && event.params.data.event === status;
}

// A state's messages as {type, content}: the client turns them into @langchain/core messages.
function plain(values) {
  if (!values || !Array.isArray(values.messages)) return values;
  const type = (m) => m.type ?? (typeof m.getType === "function" ? m.getType() : undefined);
  return { ...values, messages: values.messages.map((m) => ({ type: type(m), content: m.content })) };
}

async function within(promise, what, ms = 30000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function tokens() {
  const thread = open("support");
  try {
    // The projections are opened with the run (in the same tick as `run.start`), so that their subscriptions are in
    // the client's first stream: one opened once the run is under way gets the run's events again on a new stream
    // (SSE: the client rotates its stream), and the client ends a projection one tick after a run's end it saw —
    // on the old stream, that can be before the new one has given the projection anything.
    const started = thread.run.start({ input: { messages: [{ role: "user", content: "hi there" }] } });
    const texts = (async () => {
      const out = [];
      for await (const message of thread.messages) {
        const deltas = [];
        for await (const delta of message.text) deltas.push(delta);
        out.push(deltas);
      }
      return out;
    })();
    const values = (async () => {
      const out = [];
      for await (const value of thread.values) out.push(value);
      return out;
    })();
    await started;
    const [messages, states] = await within(Promise.all([texts, values]), "the messages and values");
    const output = await within(thread.output, "the output");
    const state = await thread.state.get({ namespace: [], keys: ["messages"] });
    return { thread_id: thread.threadId, messages, values: states.map(plain), output: plain(output), state };
  } finally {
    await thread.close();
  }
}

async function until(thread, channels, status) {
  const subscription = await thread.subscribe(channels);
  const seen = [];
  for await (const event of subscription) {
    seen.push(event);
    if (rootLifecycle(event, status)) break;
  }
  await subscription.unsubscribe();
  return seen;
}

async function interrupt() {
  const thread = open("approval");
  try {
    const started = await thread.run.start({ input: { request: "x" } });
    await within(until(thread, ["lifecycle", "input"], "interrupted"), "the interrupt");
    const interrupts = thread.interrupts.map((i) => ({ ...i }));
    const after = within(until(thread, ["values", "lifecycle"], "completed"), "the resumed run's end");
    await thread.input.respond({ interrupt_id: interrupts[0].interruptId, response: "yes", namespace: [] });
    const events = await after;
    const values = events.filter((e) => e.method === "values").map((e) => e.params.data);
    let refused = null;
    try {
      await thread.input.respond({ interrupt_id: "gone", response: "again", namespace: [] });
    } catch (error) {
      refused = { name: error.name, code: error.code ?? null, status: error.status ?? null };
    }
    const state = await thread.state.get({ namespace: [] });
    return { thread_id: thread.threadId, run_id: started.run_id, interrupts, values, refused, state };
  } finally {
    await thread.close();
  }
}

async function fork() {
  const thread = open("support");
  try {
    await thread.run.start({ input: { messages: [{ role: "user", content: "hi there" }] } });
    await within(thread.output, "the first run's output");
    const { checkpoints } = await thread.state.listCheckpoints({ namespace: [], limit: 10 });
    const ended = within(until(thread, ["lifecycle"], "completed"), "the forked run's end");
    const edited = { messages: [{ role: "user", content: "edited" }] };
    const forked = await thread.state.fork({ checkpoint_id: checkpoints.at(-1).id, input: edited });
    await ended;
    const state = await thread.state.get({ namespace: [], keys: ["messages"] });
    return { thread_id: thread.threadId, checkpoints, forked, state };
  } finally {
    await thread.close();
  }
}

async function refused() {
  const thread = open("support");
  try {
    await thread.run.start({ input: { messages: [{ role: "user", content: "hi" }] } });
    return { refused: null };
  } catch (error) {
    return { refused: { name: error.name, status: error.status ?? null } };
  } finally {
    await thread.close().catch(() => undefined);
  }
}

const scenarios = { tokens, interrupt, fork, refused };
try {
  const result = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}
