"""The outcome of one emulated call (``CallReport``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

EndedBy = Literal["caller", "service", "not_answered", "media_failed", "timeout", "transfer"]


@dataclass
class CallbackRecord:
    type: str  # short event name, e.g. "CallConnected"
    status: int | None  # HTTP status the service answered; None = no response
    t: float  # seconds since the call was placed
    url: str = ""
    error: str | None = None


@dataclass
class WebhookDelivery:
    delivery_count: int
    status: int | None
    elapsed_ms: float
    error: str | None = None


@dataclass
class RestRecord:
    method: str
    path: str
    status: int
    t: float  # seconds since the call was placed


@dataclass
class TargetRecord:
    """One transferToParticipant / participants:add and how its target responded."""

    action: str  # "transfer" | "add"
    target: str  # rawId, e.g. "4:+14255550100"
    requested_s: float  # seconds since the call was placed
    # "ringing" | "answered" | "declined" | "busy" | "no_answer" | "failed" | "cancelled"
    # | "abandoned" (the call or the bot's leg ended first)
    outcome: str = "ringing"
    resolved_s: float | None = None
    invitation_id: str | None = None  # adds: what the 202 returned
    operation_context: str | None = None
    # customCallingContext exactly as received (sipHeaders X-MS-Custom-*/UUI, voipHeaders)
    custom_calling_context: dict[str, Any] | None = None
    invitation_timeout_s: float | None = None
    transferee: str | None = None
    result: dict[str, Any] | None = None  # resultInformation of the *Failed event
    removed_s: float | None = None  # participants:remove of an added human


@dataclass
class RecordingStateRecord:
    state: str  # "active" | "inactive"
    by: str  # "start" | "pause" | "resume" | "stop" | "call ended"
    t: float  # seconds since the call was placed


@dataclass
class RecordingRecord:
    id: str
    options: dict[str, Any]  # the start request body as received
    callback_url: str  # where its RecordingStateChanged events go
    states: list[RecordingStateRecord] = field(default_factory=list)
    stopped: bool = False


@dataclass
class RecognizeRecord:
    input_type: str  # recognizeInputType as received
    options: dict[str, Any]  # recognizeOptions as received
    started_s: float  # media time (seconds since media start)
    operation_context: str | None = None
    outcome: str | None = None  # RecognizeCompleted | RecognizeFailed | RecognizeCanceled
    sub_code: int | None = None
    tones: list[str] = field(default_factory=list)  # callback vocabulary ("five", "pound")
    ended_s: float | None = None


@dataclass
class CallReport:
    answered: bool = False
    answer_count: int = 0  # successful answers for this incoming call (good service: 1)
    answer_attempts: int = 0  # all answer requests for it, including rejected repeats
    call_connection_id: str | None = None
    server_call_id: str = ""
    correlation_id: str = ""
    incoming_event_id: str = ""
    media_connected: bool = False
    media_start_s: float | None = None  # seconds after placing the call
    media_closed_by: str | None = None  # "emulator" (hang-up/stop) | "service" | None
    media_drops: int = 0  # sockets the network broke (CallScript.network.drops)
    media_reconnects: int = 0  # sockets reopened after a drop and accepted by the service
    media_reconnects_failed: int = 0
    audio_format: str | None = None
    sample_rate: int | None = None
    bidirectional: bool = False
    webhook: list[WebhookDelivery] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    rest_requests: list[RestRecord] = field(default_factory=list)
    heard_segments: list[tuple[float, float]] = field(default_factory=list)
    stop_audio_times: list[float] = field(default_factory=list)
    frames_sent: int = 0
    frames_received: int = 0
    outbound_bytes: int = 0
    underruns: int = 0
    underrun_times: list[float] = field(default_factory=list)  # seconds since media start
    invalid_outbound_frames: int = 0
    invalid_outbound_samples: list[str] = field(default_factory=list)
    dtmf_sent: list[tuple[float, str]] = field(default_factory=list)
    service_hung_up_s: float | None = None  # seconds since media start (DELETE/terminate)
    ended_by: EndedBy | None = None
    end_reason: str = ""
    transfer_target: str | None = None
    custom_context: dict[str, Any] | None = None
    participants_added: list[str] = field(default_factory=list)
    target_actions: list[TargetRecord] = field(default_factory=list)
    # The caller stayed with this human after the bot left (hang_up not for everyone) or
    # was transferred to them: "+1425..." (or the rawId of a non-phone target).
    ended_with_human: str | None = None
    recordings: list[RecordingRecord] = field(default_factory=list)
    recognitions: list[RecognizeRecord] = field(default_factory=list)
    recording_path: str | None = None
    duration_s: float = 0.0
    heard_pcm: bytes = field(default=b"", repr=False)

    @property
    def media_both_ways(self) -> bool:
        return self.media_connected and self.frames_sent > 0 and self.outbound_bytes > 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "heard_pcm":
                continue
            out[f.name] = _plain(getattr(self, f.name))
        out["media_both_ways"] = self.media_both_ways
        return out

    def summary(self) -> str:
        lines = [
            f"answered: {'yes' if self.answered else 'no'}"
            f" (answer requests ok={self.answer_count}, total={self.answer_attempts})",
            f"call connection: {self.call_connection_id or '-'}  correlation: "
            f"{self.correlation_id or '-'}",
            f"webhook: {', '.join(_webhook_text(w) for w in self.webhook) or '-'}",
        ]
        if self.media_connected:
            lines.append(
                f"media: {self.audio_format} @ {self.sample_rate} Hz; caller frames sent "
                f"{self.frames_sent}; agent frames received {self.frames_received} "
                f"({self.outbound_bytes} bytes); underruns {self.underruns}; invalid "
                f"{self.invalid_outbound_frames}"
            )
        else:
            lines.append("media: not connected")
        if self.heard_segments:
            segs = ", ".join(f"{a:.2f}-{b:.2f}s" for a, b in self.heard_segments)
            lines.append(f"caller heard the agent at: {segs}")
        else:
            lines.append("caller heard nothing from the agent")
        if self.stop_audio_times:
            lines.append("StopAudio at: " + ", ".join(f"{t:.2f}s" for t in self.stop_audio_times))
        if self.dtmf_sent:
            lines.append("DTMF sent: " + ", ".join(f"{d}@{t:.2f}s" for t, d in self.dtmf_sent))
        if self.service_hung_up_s is not None:
            lines.append(f"service hung up at {self.service_hung_up_s:.2f}s")
        cbs = ", ".join(f"{c.type}={c.status}" for c in self.callbacks)
        lines.append(f"callbacks: {cbs or '-'}")
        for a in self.target_actions:
            inv = f" invitation {a.invitation_id}" if a.invitation_id else ""
            lines.append(f"{a.action} {a.target}: {a.outcome}{inv}")
        if self.transfer_target:
            lines.append(f"transferred to {self.transfer_target}")
        if self.ended_with_human:
            lines.append(f"the caller ended up with {self.ended_with_human}")
        for rec in self.recordings:
            states = " -> ".join(f"{s.state}({s.by})" for s in rec.states)
            lines.append(f"call recording {rec.id[:12]}...: {states}")
        for rz in self.recognitions:
            lines.append(
                f"recognize {rz.input_type}: {rz.outcome or 'running'} {rz.sub_code or ''}"
                f" {' '.join(rz.tones)}".rstrip()
            )
        if self.recording_path:
            lines.append(f"recording: {self.recording_path}")
        lines.append(f"ended by {self.ended_by}: {self.end_reason} after {self.duration_s:.2f}s")
        return "\n".join(lines)


def _webhook_text(w: WebhookDelivery) -> str:
    return f"#{w.delivery_count} -> {w.status if w.status is not None else w.error} " + (
        f"in {w.elapsed_ms:.0f} ms"
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
