// The server's API as the dashboard uses it: the token kept for this tab, JSON requests with
// the error envelope turned into exceptions, and the live event stream.

const TOKEN = "orch.token";
const USER = "orch.user";

export class APIError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details || {};
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get user() {
    try { return JSON.parse(sessionStorage.getItem(USER) || "null"); } catch { return null; }
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  forget() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

const ranks = { viewer: 1, operator: 2, system: 2, admin: 3 };

/** Whether the signed-in user's role is at least `role`. */
export function can(role) {
  const user = session.user;
  if (!user) return false;
  if (role === "operator" && user.role === "system") return false;
  return (ranks[user.role] || 0) >= ranks[role];
}

/** Called when the server refuses the token (expired, revoked, user deactivated). */
let onSignedOut = () => {};
export function whenSignedOut(handler) { onSignedOut = handler; }

/** A request to the API; resolves to the decoded body (or null for 204), throws APIError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
  });
  const text = await response.text();
  let decoded = null;
  if (text) { try { decoded = JSON.parse(text); } catch { decoded = null; } }
  if (!response.ok) {
    if (response.status === 401 && session.token) { session.forget(); onSignedOut(); }
    throw new APIError(response.status, decoded);
  }
  return decoded;
}

export async function signIn(username, password) {
  const answer = await api("POST", "/auth/login", { username, password });
  session.save(answer.access_token, answer.user);
  return answer.user;
}

/** A query string from an object, leaving out empty values. */
export function query(parameters) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * The live event stream (`/sse/events` with `access_token`, as browsers must). `onEvent` gets
 * each event's JSON; heartbeats are skipped. `onOpen` is called each time the stream is
 * connected: what changed between reading a page and the stream's start is only seen by
 * reading again. The browser reconnects by itself with `Last-Event-ID`; when the token is
 * refused the stream stops. Returns a function that closes it.
 */
export function subscribe(filters, onEvent, onOpen = () => {}) {
  if (!session.token) return () => {};
  const source = new EventSource(`/sse/events${query({ ...filters, access_token: session.token })}`);
  source.onopen = () => onOpen();
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.event_type === "heartbeat") return;
    onEvent(event);
  };
  source.onerror = () => {
    // A closed stream whose token is no longer valid: check it once, which signs out on 401.
    if (source.readyState === EventSource.CLOSED) api("GET", "/auth/me").catch(() => {});
  };
  return () => source.close();
}
