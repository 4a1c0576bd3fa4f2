// Live calls: a card per call in progress, its transcript streaming in over SSE.
import {
  api, appendTurn, el, fmtClock, fmtDuration, outcomeBadge, requireToken, toDate, withToken,
} from "./common.js";

const grid = document.getElementById("live-calls");
const empty = document.getElementById("live-empty");
const status = document.getElementById("feed-status");
const cards = new Map(); // call id -> {root, lines, tools, timer, startedAt, ended}
const ENDED_CARD_MS = 5 * 60 * 1000;

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function refreshEmpty() {
  empty.hidden = cards.size > 0;
}

function card(call) {
  const id = call.call_id || call.id;
  let entry = cards.get(id);
  if (entry) return entry;
  const lines = el("ol", { class: "transcript" });
  const tools = el("p", { class: "tools" });
  const timer = el("span", { class: "timer mono" }, "0:00");
  const line = el("span", { class: "line" }, call.profile ? ` · ${call.profile}` : "");
  const where = el("span", { class: "replica" }, call.replica ? ` · on ${call.replica}` : "");
  const state = el("span", { class: "badge", dataset: { outcome: "active" } }, "live");
  const root = el(
    "article",
    { class: "card live-call", dataset: { callId: id } },
    el("header", {}, el("strong", { class: "party" }, call.caller || "unknown caller"), timer, state),
    el("p", { class: "muted small" },
      `to ${call.callee || "?"} · started ${fmtClock(call.started_at)}`,
      line, where),
    lines,
    tools,
  );
  entry = {
    id, root, lines, line, where, tools, timer, state, startedAt: toDate(call.started_at), ended: false,
  };
  cards.set(id, entry);
  grid.prepend(root);
  tick();
  refreshEmpty();
  return entry;
}

function addTurn(entry, turn) {
  appendTurn(entry.lines, turn, entry.startedAt);
  entry.lines.scrollTop = entry.lines.scrollHeight;
}

function endCard(entry, data) {
  if (entry.ended) return;
  entry.ended = true;
  entry.root.classList.add("ended");
  entry.state.replaceWith(outcomeBadge(data.outcome, "ended"));
  entry.root.append(
    el("p", { class: "small" },
      data.reason ? `${data.reason} · ` : "",
      el("a", { href: `/console/calls/${encodeURIComponent(entry.id)}` }, "open the record")),
  );
  setTimeout(() => {
    entry.root.remove();
    cards.delete(entry.id);
    refreshEmpty();
  }, ENDED_CARD_MS);
}

// A snapshot is the whole truth on (re)connect: rebuild transcripts, end what is gone.
function applySnapshot(data) {
  const live = new Set();
  for (const call of data.calls || []) {
    const entry = card(call);
    live.add(entry.id);
    entry.lines.replaceChildren();
    for (const turn of call.transcript || []) addTurn(entry, turn);
  }
  for (const entry of cards.values()) {
    if (!live.has(entry.id)) endCard(entry, { reason: "ended" });
  }
}

function tick() {
  const now = Date.now();
  for (const entry of cards.values()) {
    if (!entry.ended && entry.startedAt) entry.timer.textContent = fmtDuration((now - entry.startedAt) / 1000);
  }
}

function on(source, name, handler) {
  source.addEventListener(name, (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return; // a malformed event is not worth breaking the page for
    }
    handler(data);
  });
}

function connect() {
  setStatus("connecting", "connecting…");
  const source = new EventSource(withToken("/api/live/events"));
  source.addEventListener("open", () => setStatus("live", "live"));
  on(source, "snapshot", applySnapshot);
  on(source, "call_started", (data) => {
    // With several replicas, a call that moves is started again by the replica taking it.
    const entry = card(data);
    if (data.replica) entry.where.textContent = ` · on ${data.replica}`;
  });
  // The keypad menu moved the call to another line: show the line it is on now.
  on(source, "call_moved", (data) => { card(data).line.textContent = ` · ${data.profile}`; });
  on(source, "transcript", (data) => addTurn(card(data), data));
  on(source, "tool", (data) => {
    const entry = card(data);
    entry.tools.append(
      el("span", { class: "tool", dataset: { ok: String(Boolean(data.ok)) } },
        `${data.name} ${data.ok ? "✓" : "✗"}`),
    );
  });
  on(source, "call_ended", (data) => endCard(card(data), data));
  source.addEventListener("error", async () => {
    if (source.readyState !== EventSource.CLOSED) {
      setStatus("connecting", "reconnecting…"); // EventSource retries by itself
      return;
    }
    // Refused outright (401, 503, ...): ask the API why, then try again later.
    source.close();
    setStatus("down", "disconnected");
    try {
      await api("/api/live");
    } catch (err) {
      setStatus("down", err.message);
    }
    setTimeout(connect, 5000);
  });
}

if (requireToken()) {
  refreshEmpty();
  connect();
  setInterval(tick, 1000);
}
