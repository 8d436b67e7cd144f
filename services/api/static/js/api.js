// The control plane's API: token, JSON calls, errors, WebSockets.

const COOKIE = "plakar_cp_token";
const BASE = "/api/v1";

export function token() {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === COOKIE) return decodeURIComponent(rest.join("="));
  }
  return null;
}

// Kept 30 days so a browser stays signed in; "Sign out" forgets it.
export function setToken(value) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${COOKIE}=${encodeURIComponent(value)}; path=/; SameSite=Strict; max-age=2592000${secure}`;
}

export function forgetToken() {
  document.cookie = `${COOKIE}=; path=/; SameSite=Strict; max-age=0`;
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
  const headers = { Authorization: `Bearer ${token()}` };
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

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Browsers cannot set headers on a WebSocket: the token goes in the query.
export function socket(path, params = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return new WebSocket(`${scheme}://${location.host}${BASE}${path}${query({ ...params, token: token() })}`);
}

// What an endpoint that is still missing on this server means to the operator.
export function unavailableText(what) {
  return `${what}: not available on this server (the API answered 404/405).`;
}
