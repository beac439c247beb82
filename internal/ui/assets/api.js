// The management API as the page calls it: every call carries the bearer
// token given at the login screen, kept in sessionStorage (this tab only),
// and every error is an ApiError carrying the API's own message.

const tokenKey = "wsgate.inspector.token";

// The API's root: the page is served at <root>/ui/.
const root = new URL("..", document.baseURI);

// ApiError is a refused or failed call: the HTTP status (0 when the API
// could not be reached), the X-Amzn-ErrorType and the message the API gave.
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }

  // describe is the error as the page shows it.
  describe() {
    if (this.status === 0) return this.message;
    const kind = this.type ? `${this.status} ${this.type}` : `${this.status}`;
    return `${kind}: ${this.message}`;
  }
}

export function token() {
  return sessionStorage.getItem(tokenKey) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t);
  else sessionStorage.removeItem(tokenKey);
}

let onAuthFailure = () => {};

// whenAuthFails sets what happens when a call is refused for its
// credentials (401 or 403).
export function whenAuthFails(f) {
  onAuthFailure = f;
}

// path joins segments into an API path, escaping each one whole: a
// connection id may hold "/", "+" or "=", and a topic's "/" goes as %2F, so
// that the API sees the name as typed and judges it (a "//" in a topic gets
// its message, not a 404 for the path).
export function path(...segments) {
  return segments.map(encodeURIComponent).join("/");
}

// call makes one API call and resolves with its JSON body (null when it
// has none). Options: query (an object; empty values are left out), body (a
// string, sent as is), withToken (default true), token (instead of the
// stored one), authCheck (default true: a
// 401 or 403 ends the session and shows the login; false for calls whose 403
// means something else, such as the message tail's), keepalive.
export async function call(method, apiPath, opts = {}) {
  const url = new URL(apiPath.replace(/^\//, ""), root);
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = {};
  const t = opts.withToken === false ? "" : (opts.token ?? token());
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, body: opts.body, cache: "no-store", credentials: "omit",
      keepalive: Boolean(opts.keepalive),
    });
  } catch (e) {
    throw new ApiError(0, "", `cannot reach the management API (${e.message})`);
  }
  const text = await resp.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!resp.ok) {
    const type = resp.headers.get("X-Amzn-ErrorType") || "";
    const message = body && typeof body.message === "string" ? body.message : (text || resp.statusText || "no message");
    const err = new ApiError(resp.status, type, message);
    if ((resp.status === 401 || resp.status === 403) && opts.authCheck !== false && opts.withToken !== false) {
      onAuthFailure(err);
    }
    throw err;
  }
  return body;
}
