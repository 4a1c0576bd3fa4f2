// The latency chart of a call: one stacked bar per agent turn (speech to text, brain,
// voice), with marks for when the first audio went out and, when measured, when the
// caller heard it. Plain SVG drawn here: no chart library to download or trust.

const NS = "http://www.w3.org/2000/svg";
const W = 720;
const H = 260;
const M = { left: 56, right: 12, top: 14, bottom: 58 };

export const STAGES = [
  { key: "stt_ms", label: "speech to text", cls: "stt" },
  { key: "brain_first_ms", label: "brain, first sentence", cls: "brain" },
  { key: "tts_first_ms", label: "voice, first audio", cls: "tts" },
];
export const MARKS = [
  { key: "first_audio_ms", label: "first audio sent", cls: "first" },
  { key: "voice_to_voice_ms", label: "voice to voice", cls: "v2v" },
];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

// A round step so the axis has at most six labelled lines.
function tickStep(max) {
  for (const step of [10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000]) {
    if (max / step <= 6) return step;
  }
  return Math.ceil(max / 6 / 10000) * 10000;
}

function describe(turn, index) {
  const parts = [...STAGES, ...MARKS]
    .filter(({ key }) => num(turn[key]))
    .map(({ key, label }) => `${label} ${Math.round(num(turn[key]))} ms`);
  const said = turn.text ? ` — “${turn.text}”` : "";
  return `Turn ${index + 1}: ${parts.join(", ") || "no timings"}${said}`;
}

export function latencyChart(turns) {
  if (!turns || !turns.length) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "No turns were measured on this call.";
    return none;
  }
  const totals = turns.map((t) => STAGES.reduce((sum, { key }) => sum + num(t[key]), 0));
  const peaks = turns.map((t, i) => Math.max(totals[i], ...MARKS.map(({ key }) => num(t[key]))));
  const step = tickStep(Math.max(1, ...peaks));
  const top = Math.ceil(Math.max(1, ...peaks) / step) * step;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const y = (ms) => M.top + plotH - (ms / top) * plotH;
  const band = plotW / turns.length;
  const barW = Math.max(3, Math.min(44, band * 0.6));
  const labelEvery = Math.ceil(turns.length / 24);

  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`, class: "latency", role: "img",
    "aria-label": `Latency of ${turns.length} turns`, "data-turns": turns.length,
  });
  for (let ms = 0; ms <= top; ms += step) {
    root.append(
      svg("line", { x1: M.left, x2: W - M.right, y1: y(ms), y2: y(ms), class: "grid" }),
      svg("text", { x: M.left - 6, y: y(ms) + 4, class: "axis", "text-anchor": "end" },
        ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`),
    );
  }
  turns.forEach((turn, i) => {
    const x = M.left + band * i + (band - barW) / 2;
    const group = svg("g", { class: "turn", "data-turn": i + 1 }, svg("title", {}, describe(turn, i)));
    let base = 0;
    for (const { key, cls } of STAGES) {
      const ms = num(turn[key]);
      if (!ms) continue;
      group.append(svg("rect", {
        x, width: barW, y: y(base + ms), height: Math.max(0.5, y(base) - y(base + ms)), class: cls,
      }));
      base += ms;
    }
    for (const { key, cls } of MARKS) {
      const ms = num(turn[key]);
      if (ms) group.append(svg("line", { x1: x - 4, x2: x + barW + 4, y1: y(ms), y2: y(ms), class: cls }));
    }
    // A wide transparent target so the tooltip is easy to hit on thin bars.
    group.append(svg("rect", { x: M.left + band * i, width: band, y: M.top, height: plotH, class: "hit" }));
    root.append(group);
    if (i % labelEvery === 0) {
      root.append(svg("text", {
        x: x + barW / 2, y: M.top + plotH + 16, class: "axis", "text-anchor": "middle",
      }, i + 1));
    }
  });
  root.append(svg("text", { x: M.left + plotW / 2, y: M.top + plotH + 32, class: "axis", "text-anchor": "middle" }, "turn"));

  // The legend names only what this call measured.
  const measured = ({ key }) => turns.some((t) => num(t[key]));
  let lx = M.left;
  const ly = H - 10;
  for (const { label, cls } of STAGES.filter(measured)) {
    root.append(svg("rect", { x: lx, y: ly - 9, width: 10, height: 10, class: cls }),
      svg("text", { x: lx + 14, y: ly, class: "legend" }, label));
    lx += 24 + label.length * 6.2;
  }
  for (const { label, cls } of MARKS.filter(measured)) {
    root.append(svg("line", { x1: lx, x2: lx + 14, y1: ly - 4, y2: ly - 4, class: cls }),
      svg("text", { x: lx + 18, y: ly, class: "legend" }, label));
    lx += 28 + label.length * 6.2;
  }
  return root;
}
