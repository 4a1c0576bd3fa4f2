// Call history: search and filter past calls, newest first; the filters live in the URL
// so a search can be bookmarked and the back button works.
import {
  api, el, fmtDateTime, fmtDuration, outcomeBadge, requireToken, sentimentText, showError,
} from "./common.js";

const PAGE = 25;
const form = document.getElementById("filters");
const q = document.getElementById("q");
const outcome = document.getElementById("outcome");
const body = document.getElementById("calls-body");
const empty = document.getElementById("calls-empty");
const error = document.getElementById("calls-error");
const range = document.getElementById("range");
const prev = document.getElementById("prev");
const next = document.getElementById("next");

let offset = 0;
let request = 0; // only the latest answer is drawn when typing outruns the API

function readUrl() {
  const params = new URLSearchParams(location.search);
  q.value = params.get("q") || "";
  outcome.value = params.get("outcome") || "";
  offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
}

function writeUrl() {
  const params = new URLSearchParams();
  if (q.value.trim()) params.set("q", q.value.trim());
  if (outcome.value) params.set("outcome", outcome.value);
  if (offset) params.set("offset", String(offset));
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function row(call) {
  const href = `/console/calls/${encodeURIComponent(call.id)}`;
  const open = () => location.assign(href);
  return el(
    "tr",
    { class: "clickable", dataset: { callId: call.id }, onclick: open },
    el("td", {}, el("a", { href }, fmtDateTime(call.started_at))),
    el("td", {}, call.caller),
    el("td", { class: "num" }, fmtDuration(call.duration_s)),
    el("td", {}, outcomeBadge(call.outcome, call.status)),
    el("td", { class: "num" }, call.turns ?? 0),
    el("td", {}, sentimentText(call.sentiment)),
    el("td", { class: "summary" }, call.summary || (call.reason ? `(${call.reason})` : ""),
      call.has_recording ? el("span", { class: "rec", title: "has a recording" }, " ●") : null),
  );
}

async function load() {
  writeUrl();
  const mine = ++request;
  let data;
  try {
    data = await api("/api/calls", {
      q: q.value.trim(), outcome: outcome.value, limit: PAGE, offset,
    });
  } catch (err) {
    if (mine === request) showError(error, err.message);
    return;
  }
  if (mine !== request) return;
  showError(error, "");
  body.replaceChildren(...data.calls.map(row));
  empty.hidden = data.calls.length > 0;
  const total = data.total ?? data.calls.length;
  range.textContent = data.calls.length
    ? `${offset + 1}–${offset + data.calls.length} of ${total}` : `0 of ${total}`;
  prev.disabled = offset === 0;
  next.disabled = offset + data.calls.length >= total;
}

let typing;
q.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { offset = 0; load(); }, 250);
});
outcome.addEventListener("change", () => { offset = 0; load(); });
form.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; load(); });
prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
next.addEventListener("click", () => { offset += PAGE; load(); });

if (requireToken()) {
  readUrl();
  load();
}
