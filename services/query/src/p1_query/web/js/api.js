// Every request of the dashboard: same origin only, credentials by the session cookie (HttpOnly: the
// page never sees the token after sign-in). Failures become ApiError with a sentence a person can read.

export class ApiError extends Error {
  constructor(status, sentence) {
    super(sentence);
    this.status = status;
    this.sentence = sentence;
  }
}

const SENTENCES = {
  401: "Your session has ended. Please sign in again.",
  403: "This token may not read that.",
  404: "That device is unknown, or not readable with this token.",
  429: "Too many requests just now. Wait a moment and try again.",
  503: "The server cannot reach its database right now. Try again in a minute.",
};

async function problemSentence(response) {
  try {
    const body = await response.json();
    if (typeof body?.detail === "string" && body.detail) return `The server refused the request: ${body.detail}`;
  } catch {
    // not problem+json: the status alone says it
  }
  return `The server answered ${response.status}. Try again later.`;
}

export function url(path, params = {}) {
  const u = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) if (value != null) u.searchParams.set(key, value);
  return u;
}

async function send(path, options = {}, params = {}) {
  let response;
  try {
    response = await fetch(url(path, params), { credentials: "same-origin", ...options });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check the connection; the page retries on its own.");
  }
  if (!response.ok) {
    throw new ApiError(response.status, SENTENCES[response.status] ?? (await problemSentence(response)));
  }
  return response;
}

export async function getJson(path, params) {
  const response = await send(path, { headers: { Accept: "application/json" } }, params);
  return response.json();
}

export const devicePath = (device, rest = "") => `/v1/devices/${encodeURIComponent(device)}${rest}`;

/** The operations this server has, from its own contract: optional parts of the page (the quarter now,
 * warnings, the bill) are asked for only when the server documents them, so no request ends in 404. */
let features = null;
export async function loadFeatures() {
  if (features) return features;
  try {
    const spec = await getJson("/openapi.json");
    features = new Set(Object.keys(spec.paths ?? {}));
  } catch {
    features = new Set();
  }
  return features;
}

export const has = (path) => features?.has(path) ?? false;

export async function signIn(token) {
  const response = await fetch("/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ token }),
  }).catch(() => null);
  if (response === null) throw new ApiError(0, "The server cannot be reached. Check the connection and try again.");
  if (response.ok) return;
  if (response.status === 401 || response.status === 403 || response.status === 422) {
    throw new ApiError(response.status, "That token was not accepted. Check it and try again.");
  }
  throw new ApiError(response.status, SENTENCES[response.status] ?? (await problemSentence(response)));
}

export async function signOut() {
  await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }).catch(() => null);
}
