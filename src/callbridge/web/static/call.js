// One call's record: facts, summary, recording, latency chart, transcript, tools, events.
import {
  api, appendTurn, el, fmtDateTime, fmtDuration, offset, outcomeBadge, requireToken, sentimentText,
  showError, toDate, withToken,
} from "./common.js";
import { latencyChart } from "./chart.js";

const root = document.getElementById("call");
const callId = root.dataset.callId;
const error = document.getElementById("call-error");

function facts(call) {
  const rows = [
    ["Caller", call.caller],
    ["Called", call.callee],
    ["Profile", call.profile],
    ["Started", fmtDateTime(call.started_at)],
    ["Ended", call.ended_at ? fmtDateTime(call.ended_at) : call.status],
    ["Duration", fmtDuration(call.duration_s)],
    ["Reason", call.reason],
    ["Transferred to", call.transferred_to],
    ["Turns", call.turns],
    ["Sentiment", sentimentText(call.sentiment || call.analytics?.sentiment)],
    ["Correlation id", call.correlation_id],
  ];
  return rows
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]);
}

function pretty(value) {
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2); // tool output is JSON text
  } catch {
    return value;
  }
}

function toolRows(tool, startedAt) {
  const result = tool.ok ? "ok" : "failed";
  return [
    el("tr", { dataset: { tool: tool.name } },
      el("td", { class: "mono" }, offset(startedAt, tool.at)),
      el("td", {}, el("strong", {}, tool.name)),
      el("td", {}, el("span", { class: "badge", dataset: { outcome: tool.ok ? "resolved" : "failed" } }, result)),
      el("td", { class: "num" }, `${Math.round(Number(tool.duration_ms) || 0)} ms`)),
    el("tr", { class: "detail" },
      el("td", { colspan: 4 },
        el("details", {},
          el("summary", {}, "arguments and output"),
          el("pre", {}, pretty(tool.arguments ?? {})),
          el("pre", {}, pretty(tool.output ?? ""))))),
  ];
}

function toolsTable(tools, startedAt) {
  if (!tools.length) return el("p", { class: "muted" }, "No tools ran on this call.");
  const head = ["At", "Tool", "Result", "Time"].map((name) => el("th", {}, name));
  return el("table", { class: "tools-table" },
    el("thead", {}, el("tr", {}, head)),
    el("tbody", {}, tools.map((tool) => toolRows(tool, startedAt))));
}

function eventLine(event, startedAt) {
  const shown = Object.entries(event.detail || {}).filter(([, v]) => v !== "" && v !== null);
  const detail = shown.length ? JSON.stringify(Object.fromEntries(shown)) : "";
  return el("li", { dataset: { event: event.name } },
    el("span", { class: "when mono" }, offset(startedAt, event.at)),
    el("strong", {}, event.name), " ", el("span", { class: "muted mono" }, detail));
}

function render(call) {
  document.title = `Call ${call.caller || call.id} · callbridge`;
  document.getElementById("call-title").textContent = call.id.slice(0, 12);
  const badge = outcomeBadge(call.outcome, call.status);
  badge.id = "call-outcome"; // kept, so a refresh finds it again
  document.getElementById("call-outcome").replaceWith(badge);
  document.getElementById("call-facts").replaceChildren(...facts(call));

  const summary = call.summary || call.analytics?.summary;
  document.getElementById("summary-box").hidden = !summary;
  document.getElementById("summary").textContent = summary || "";

  const audio = document.getElementById("recording");
  document.getElementById("recording-box").hidden = !call.has_recording;
  if (call.has_recording) {
    const src = withToken(call.recording_url || `/api/calls/${encodeURIComponent(call.id)}/recording`);
    if (audio.dataset.src !== src) { // a refresh must not restart what is playing
      audio.dataset.src = src;
      audio.src = src;
    }
  }

  document.getElementById("latency-chart").replaceChildren(latencyChart(call.latencies || []));

  const start = toDate(call.started_at);
  const transcript = document.getElementById("transcript");
  transcript.replaceChildren();
  for (const turn of call.transcript || []) {
    const line = appendTurn(transcript, turn, call.started_at);
    const at = toDate(turn.at);
    if (call.has_recording && start && at && !line.classList.contains("seekable")) {
      // The recording starts with the call: a line's offset is its place in the audio.
      line.classList.add("seekable");
      line.addEventListener("click", () => {
        audio.currentTime = Math.max(0, (at - start) / 1000 - 0.3);
        audio.play().catch(() => {});
      });
    }
  }
  if (!transcript.children.length) transcript.append(el("li", { class: "muted" }, "Nothing was said."));

  document.getElementById("tools").replaceChildren(toolsTable(call.tools || [], call.started_at));
  const events = (call.events || []).map((event) => eventLine(event, call.started_at));
  document.getElementById("events").replaceChildren(...events);
}

// A call still running, or just ended and not yet analysed, is fetched again for a while
// so the summary and sentiment appear without a reload.
const REFRESH_MS = 2000;
const MAX_REFRESHES = 30;
let refreshes = 0;

async function load() {
  let call;
  try {
    call = await api(`/api/calls/${encodeURIComponent(callId)}`);
  } catch (err) {
    showError(error, err.status === 404 ? "There is no call with this id." : err.message);
    return;
  }
  showError(error, "");
  render(call);
  const settled = call.status !== "active" && (call.analytics?.analyzed_at || call.status === "incomplete");
  if (!settled && refreshes++ < MAX_REFRESHES) setTimeout(load, REFRESH_MS);
}

if (requireToken()) load();
