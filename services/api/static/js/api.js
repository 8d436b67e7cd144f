// The control plane's API: token, JSON calls, errors, WebSockets.

const BASE = "/api/v1";

// The token is traded once for an HttpOnly session cookie (7 days) that this page's
// scripts never see; every call after rides on that cookie.
export async function openSession(token) {
  const response = await fetch(`${BASE}/session`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  if (response.status === 401) throw new ApiError(401, "the API token was refused");
  if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
  return response.json();
}

export async function closeSession() {
  await fetch(`${BASE}/session`, { method: "DELETE", headers: { "X-Plakar-CSRF": "1" } }).catch(() => {});
}

export class ApiError extends Error {
  constructor(status, message, field = null, body = null) {
    super(message);
    this.status = status;
    this.field = field;
    this.body = body;
  }

  // The endpoint itself does not exist on this server (not "this thing was not found").
  get unavailable() {
    return this.status === 405 || (this.status === 404 && this.message === "Not Found");
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  // The header another site's page cannot send: the api takes it as proof of origin.
  const headers = { "X-Plakar-CSRF": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "cannot reach the control plane; is plakar-cp running?");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (response.status === 401) {
    onUnauthorized();
    throw new ApiError(401, "the API token was refused");
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data && data.field, data);
  }
  return data;
}

export const get = (path, opts) => api(path, opts);
export const post = (path, body) => api(path, { method: "POST", body });
export const patch = (path, body) => api(path, { method: "PATCH", body });
export const del = (path) => api(path, { method: "DELETE" });

// An api URL the browser opens itself (a download link): the session cookie goes with it.
export const apiHref = (path) => BASE + path;

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// The session cookie goes with the WebSocket's handshake (same origin).
export function socket(path, params = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return new WebSocket(`${scheme}://${location.host}${BASE}${path}${query(params)}`);
}

// What an endpoint that is still missing on this server means to the operator.
export function unavailableText(what) {
  return `${what}: not available on this server (the API answered 404/405).`;
}
