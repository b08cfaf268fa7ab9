// The HTTP API, with the API key (if any) in the Authorization header. Errors become ApiError, carrying the server's
// stable `code` and safe `message` ({"error": {"code", "message"}}), and `retryAfter` (seconds) for 429s.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  /** `key`: the API key, or null on a local development server. `onUnauthorized(error)`: called on every 401. */
  constructor({ key = null, onUnauthorized = () => {} } = {}) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    return headers;
  }

  /** The raw Response of a successful request (for event streams); ApiError otherwise. */
  async fetch(method, path, { body, headers, signal } = {}) {
    const init = { method, headers: this.headers(headers), signal, cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, "connection_lost", "The server cannot be reached.");
    }
    if (!response.ok) throw await this.errorFrom(response);
    return response;
  }

  async errorFrom(response) {
    let detail = {};
    try {
      detail = (await response.json()).error ?? {};
    } catch {
      // not JSON (a proxy's page, say): fall back on the status
    }
    const retry = parseInt(response.headers.get("Retry-After") ?? "", 10);
    const error = new ApiError(
      response.status,
      detail.code ?? `http_${response.status}`,
      detail.message ?? `The server answered ${response.status}.`,
      Number.isFinite(retry) ? retry : null,
    );
    if (response.status === 401) this.onUnauthorized(error);
    return error;
  }

  async request(method, path, options) {
    const response = await this.fetch(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  get(path, options) {
    return this.request("GET", path, options);
  }

  post(path, body, options = {}) {
    return this.request("POST", path, { ...options, body });
  }

  patch(path, body) {
    return this.request("PATCH", path, { body });
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}
