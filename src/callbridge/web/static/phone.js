// The browser phone: the microphone goes to /phone/ws as a call, the agent's voice comes
// back and plays. Wire protocol: docs/console.md. Audio work happens in phone-worklet.js.
import { appendTurn, el, requireToken, token } from "./common.js";

const WORKLET_URL = new URL("phone-worklet.js", import.meta.url).href;

const ui = {
  phone: document.getElementById("phone"),
  name: document.getElementById("caller-name"),
  status: document.getElementById("phone-status"),
  call: document.getElementById("call-button"),
  mute: document.getElementById("mute-button"),
  keys: [...document.querySelectorAll("#keypad button")],
  mic: document.getElementById("mic-level"),
  playing: document.getElementById("agent-playing"),
  played: document.getElementById("played"),
  transcript: document.getElementById("phone-transcript"),
};

let call = null; // the call in progress, if any

function setStatus(text, kind) {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind || "";
}

// idle | connecting | in-call | ended: the page's state, also read by the browser tests.
function setState(state) {
  ui.phone.dataset.state = state;
  const inCall = state === "in-call";
  ui.call.textContent = state === "connecting" || inCall ? "Hang up" : "Call";
  ui.call.classList.toggle("danger", state === "connecting" || inCall);
  ui.mute.disabled = !inCall;
  for (const key of ui.keys) key.disabled = !inCall;
  ui.name.disabled = state === "connecting" || inCall;
}

function addLine(node) {
  ui.transcript.append(node);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function addTurn(turn, startedAt) {
  appendTurn(ui.transcript, turn, startedAt);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

class PhoneCall {
  constructor(caller) {
    this.caller = caller;
    this.ready = false;
    this.ended = false;
    this.muted = false;
    this.stops = 0;
    this.startedAt = 0;
  }

  async start() {
    setState("connecting");
    setStatus("Starting the microphone…");
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    await this.ctx.audioWorklet.addModule(WORKLET_URL);
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    if (this.ended) return this.cleanup(); // hung up while the permission prompt was open
    // 24 kHz is the agents' native rate; a context slower than 32 kHz cannot carry it.
    this.rate = this.ctx.sampleRate >= 32000 ? 24000 : 16000;

    this.player = new AudioWorkletNode(this.ctx, "pcm-player", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { rate: this.rate },
    });
    this.player.port.onmessage = (event) => this.onPlayer(event.data);
    this.player.connect(this.ctx.destination);

    this.capture = new AudioWorkletNode(this.ctx, "pcm-capture", {
      numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit",
      processorOptions: { rate: this.rate },
    });
    this.capture.port.onmessage = (event) => this.onFrame(event.data);
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.source.connect(this.capture);
    await this.ctx.resume();

    setStatus("Calling…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${scheme}//${location.host}/phone/ws`);
    this.ws.binaryType = "arraybuffer";
    // The token goes in the first message, not the URL, so it stays out of access logs.
    this.ws.onopen = () => this.send({ type: "hello", token: token(), rate: this.rate, caller: this.caller });
    this.ws.onmessage = (event) => this.onMessage(event.data);
    this.ws.onclose = (event) => this.onClose(event);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  onFrame({ pcm, peak }) {
    ui.mic.value = this.muted ? 0 : peak;
    // Audio before `ready` is dropped: the call's timeline starts when the agent's does.
    if (this.ready && this.ws.readyState === WebSocket.OPEN) this.ws.send(pcm);
  }

  onPlayer(message) {
    if (message.type === "state") {
      ui.playing.classList.toggle("on", message.playing);
      ui.played.dataset.ms = String(message.playedMs);
      ui.played.textContent = `${(message.playedMs / 1000).toFixed(1)} s`;
      this.send({ type: "playback", playing: message.playing, played_ms: message.playedMs });
    } else if (message.type === "flushed") {
      this.send({ type: "flushed", dropped_ms: message.droppedMs });
    }
  }

  onMessage(data) {
    if (data instanceof ArrayBuffer) {
      // Agent audio goes straight to the audio thread; the buffer is moved, not copied.
      if (this.ready) this.player.port.postMessage(data, [data]);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    switch (msg.type) {
      case "ready":
        this.ready = true;
        this.callId = msg.call_id;
        this.startedAt = Date.now();
        ui.phone.dataset.callId = msg.call_id;
        setState("in-call");
        this.timer = setInterval(() => this.showTime(), 1000);
        this.showTime();
        break;
      case "stop":
        // Barge-in: the caller is talking over the agent; silence it now, not after the queue.
        this.player.port.postMessage({ type: "flush" });
        this.stops += 1;
        ui.phone.dataset.stops = String(this.stops);
        break;
      case "transcript":
        addTurn(msg, this.startedAt);
        break;
      case "tool":
        addLine(el("li", { class: "tool-line", dataset: { tool: msg.name } },
          `tool ${msg.name} ${msg.ok ? "✓" : "✗"}`));
        break;
      case "transfer":
        clearInterval(this.timer); // keep this on screen until the line closes
        setStatus(`Transferred to ${msg.target}: a browser call cannot reach a phone, so it ends here.`);
        break;
      case "ended":
        this.ended = true;
        this.endReason = `Call ended: ${msg.reason} (${msg.outcome}).`;
        break;
      case "error":
        this.error = msg.message;
        break;
      default:
        break; // newer servers may send more; ignoring them keeps old pages working
    }
  }

  showTime() {
    const s = Math.floor((Date.now() - this.startedAt) / 1000);
    setStatus(`In call · ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}${this.muted ? " · muted" : ""}`);
  }

  setMuted(muted) {
    this.muted = muted;
    // A disabled track yields silence, which still flows: the agent hears a quiet caller,
    // not a broken line (and the idle timeout does not fire).
    for (const track of this.stream.getAudioTracks()) track.enabled = !muted;
    ui.mute.setAttribute("aria-pressed", String(muted));
    ui.mute.textContent = muted ? "Unmute" : "Mute";
    this.send({ type: "mute", muted });
    this.showTime();
  }

  dtmf(digit) {
    this.send({ type: "dtmf", digit });
    addLine(el("li", { class: "tool-line" }, `pressed ${digit}`));
  }

  hangUp() {
    this.ended = true;
    clearInterval(this.timer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.send({ type: "hangup" });
      setStatus("Hanging up…");
      // The service answers with `ended` and closes; do not wait on it forever.
      setTimeout(() => this.ws.close(), 2000);
    } else {
      if (this.ws) this.ws.close();
      this.cleanup();
    }
  }

  onClose(event) {
    let text = this.endReason || this.error || `The line closed (${event.code}${event.reason ? " " + event.reason : ""}).`;
    if (event.code === 4401) text = "The service refused the admin token: sign in again.";
    if (!this.endReason && this.ended && !this.error) text = "You hung up.";
    setStatus(text, this.endReason || this.ended ? "" : "error");
    this.cleanup();
  }

  cleanup() {
    clearInterval(this.timer);
    this.ready = false;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.ctx && this.ctx.state !== "closed") this.ctx.close();
    ui.playing.classList.remove("on");
    ui.mic.value = 0;
    setState(this.callId ? "ended" : "idle");
    call = null;
  }
}

async function startCall() {
  ui.transcript.replaceChildren();
  ui.played.dataset.ms = "0";
  ui.played.textContent = "0.0 s";
  delete ui.phone.dataset.stops;
  delete ui.phone.dataset.callId;
  call = new PhoneCall(ui.name.value.trim() || "Browser caller");
  try {
    await call.start();
  } catch (err) {
    const why = err && err.name === "NotAllowedError" ? "Microphone access was refused."
      : err && err.name === "NotFoundError" ? "No microphone was found." : `Could not start: ${err.message || err}`;
    setStatus(why, "error");
    if (call) call.cleanup();
  }
}

ui.call.addEventListener("click", () => (call ? call.hangUp() : startCall()));
ui.mute.addEventListener("click", () => call && call.setMuted(!call.muted));
for (const key of ui.keys) key.addEventListener("click", () => call && call.dtmf(key.dataset.digit));

if (requireToken()) setState("idle");
