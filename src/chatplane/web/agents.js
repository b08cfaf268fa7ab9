// What a thread can run: the server's graphs and agents (GET /agents), then the user's own assistants
// (GET /v1/assistants, the non-default ones; a graph's default assistant is already the graph itself). A thread
// names either a graph (its `agent` is the graph's name) or an assistant (its `agent` is the assistant's id): both
// are resolved here to a label for the screen and to whether the graph keeps a chat history (`messages`).

export class AgentCatalog {
  constructor(agents = [], assistants = []) {
    this.agents = agents;
    this.assistants = assistants.filter((a) => !a.default);
  }

  /** The picker's options, graphs first: [{value, label, description}]; `value` is what a new thread names. */
  choices() {
    return [
      ...this.agents.map((a) => ({ value: a.name, label: a.name, description: a.description ?? "" })),
      ...this.assistants.map((a) => ({
        value: a.assistant_id,
        label: a.name || a.assistant_id,
        description: a.description ?? `Your assistant of ${a.graph_id}`,
      })),
    ];
  }

  /** {label, messages} for a thread's `agent`; unknown names count as chat agents (the server decides). */
  resolve(name) {
    const agent = this.agents.find((a) => a.name === name || a.assistant_id === name);
    if (agent) return { label: agent.name, messages: agent.messages !== false };
    const mine = this.assistants.find((a) => a.assistant_id === name);
    const graph = mine && this.agents.find((a) => a.graph_id === mine.graph_id);
    return { label: mine?.name || name, messages: graph ? graph.messages !== false : true };
  }
}
