// Shared by every console page: the admin token, API calls, DOM building, formatting.
// The token lives in sessionStorage: it stays with this tab and is gone when it closes.

const TOKEN_KEY = "callbridge.admin_token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.assign("/console/login");
}

export function toLogin() {
  const next = location.pathname + location.search;
  location.assign("/console/login?next=" + encodeURIComponent(next));
}

// Pages call this first: no token, no page.
export function requireToken() {
  if (!token()) {
    toLogin();
    return false;
  }
  const out = document.getElementById("sign-out");
  if (out) out.addEventListener("click", signOut);
  return true;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET a JSON route of the records API. A 401 means the token is wrong or was rotated:
// back to the login page rather than an error on every panel.
export async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const res = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  if (res.status === 401) {
    toLogin();
    throw new ApiError(401, "signed out");
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      detail = (await res.json()).detail || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(res.status, `${detail} (HTTP ${res.status})`);
  }
  return res.json();
}

// For URLs the browser fetches by itself (<audio src>, EventSource): no headers there.
export function withToken(path) {
  const url = new URL(path, location.origin);
  url.searchParams.set("token", token());
  return url.pathname + url.search;
}

// el("a", {href: "/x", class: "y"}, "text", child): text always goes in as text, so
// call data (transcripts, tool output) can never become markup.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function showError(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

// The API speaks ISO 8601 strings; the phone socket epoch seconds. Accept both.
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function fmtDateTime(value) {
  const date = toDate(value);
  if (!date) return "—";
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function fmtClock(value) {
  const date = toDate(value);
  return date ? date.toLocaleTimeString(undefined, { hour12: false }) : "";
}

// 73.5 -> "1:13"; null -> "—"
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// Seconds from `start` to `at`, as m:ss, for a line of a transcript.
export function offset(start, at) {
  const a = toDate(start);
  const b = toDate(at);
  if (!a || !b) return "";
  return fmtDuration((b - a) / 1000);
}

export function outcomeBadge(outcome, status) {
  const label = outcome || status || "active";
  return el("span", { class: "badge", dataset: { outcome: label } }, label);
}

export function sentimentText(sentiment) {
  if (!sentiment) return "—";
  const score = Number(sentiment.compound);
  return Number.isFinite(score) ? `${sentiment.label} (${score.toFixed(2)})` : sentiment.label;
}

// One line of a transcript, the same on the live, call and phone pages.
export function transcriptLine(turn, startedAt) {
  const role = turn.role === "caller" ? "caller" : "agent";
  return el(
    "li",
    { class: "turn " + role, dataset: { role } },
    el("span", { class: "who" }, role === "caller" ? "Caller" : "Agent"),
    el("span", { class: "when" }, startedAt ? offset(startedAt, turn.at) : fmtClock(turn.at)),
    el("span", { class: "text" }, turn.text),
  );
}

// Agents report a reply sentence by sentence; consecutive lines of one speaker read
// better as one bubble (the first line's time stays). Returns the line it went into.
export function appendTurn(list, turn, startedAt) {
  const last = list.lastElementChild;
  const role = turn.role === "caller" ? "caller" : "agent";
  if (last && last.dataset.role === role) {
    last.querySelector(".text").append(" " + turn.text);
    return last;
  }
  const line = transcriptLine(turn, startedAt);
  list.append(line);
  return line;
}
