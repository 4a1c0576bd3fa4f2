"""Runs scenario files as real calls: the emulator's live caller speaks (a Piper voice),
listens (Whisper transcribes what it heard), keys digits and barges in; then the call's
outcome is checked against the service's record of it (tools run, transfer, end)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callbridge.agent.local.models import get_stt, get_tts, speech_executor
from callbridge.agent.local.tts import PiperTts
from callbridge.audio.resample import StreamResampler
from callbridge.call.session import CallSession
from callbridge.devstack import Stack
from callbridge.emulator import (
    AgentTurn,
    CallEndedError,
    CallReport,
    CallScript,
    LiveCaller,
    NetworkConditions,
    SaidSpan,
)
from callbridge.scenarios.model import BargeIn, Listen, Network, Scenario, Step

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    index: int
    kind: str
    text: str = ""  # what the caller said or pressed, or what it heard
    latency_ms: float | None = None  # caller's speech end → agent's first audio
    barge_in_ms: float | None = None  # caller's speech onset → StopAudio
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    report: CallReport | None = None
    tools: list[str] = field(default_factory=list)
    transferred_to: str | None = None
    end_reason: str = ""
    duration_s: float = 0.0
    timings: list[dict[str, Any]] = field(default_factory=list)  # the agent's own, per turn

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.steps)

    @property
    def latencies_ms(self) -> list[float]:
        return [s.latency_ms for s in self.steps if s.latency_ms is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.scenario.name,
            "path": self.scenario.path,
            "ok": self.ok,
            "problems": self.problems + [p for s in self.steps for p in s.problems],
            "steps": [
                {
                    "kind": s.kind,
                    "text": s.text,
                    "latency_ms": s.latency_ms,
                    "barge_in_ms": s.barge_in_ms,
                    "problems": s.problems,
                }
                for s in self.steps
            ],
            "tools": self.tools,
            "transferred_to": self.transferred_to,
            "ended_by": self.report.ended_by if self.report else None,
            "end_reason": self.end_reason,
            "duration_s": round(self.duration_s, 2),
            "agent_timings": self.timings,
        }


class CallerVoice:
    """The scripted caller's voice: the bundled Piper voice, higher and at its own pace,
    so it does not sound like the agent (and Whisper hears two people)."""

    def __init__(self, tts: PiperTts | None = None) -> None:
        base = tts or get_tts()
        self._tts = base.with_options(pitch=1.15, noise_scale=0.0, noise_w_scale=0.0)
        self.rate = self._tts.sample_rate
        self._cache: dict[tuple[str, float], bytes] = {}

    async def speak(self, text: str, length_scale: float = 1.0) -> bytes:
        key = (text, length_scale)
        if key not in self._cache:
            tts = self._tts.with_options(length_scale=length_scale)
            loop = asyncio.get_running_loop()
            self._cache[key] = await loop.run_in_executor(speech_executor(), tts.synthesize, text)
        return self._cache[key]


async def transcribe_heard(pcm: bytes, rate: int) -> str:
    """What the caller heard, as text (Whisper on the agent channel)."""
    if not pcm:
        return ""
    pcm16 = StreamResampler(rate, 16000).process(pcm, last=True)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(speech_executor(), get_stt().transcribe_whole, pcm16)
    return str(result.text).strip()


def _onset_s(pcm: bytes, rate: int) -> float:
    """Where speech starts in a synthesised utterance (its leading silence)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    frame = rate // 50
    for i in range(0, max(0, x.size - frame), frame):
        chunk = x[i : i + frame]
        if float(np.sqrt(np.mean(chunk * chunk))) > 500:
            return i / rate
    return 0.0


_WORD = re.compile(r"[a-z0-9']+")


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _check_heard(heard: str, listen: Listen) -> list[str]:
    said = _norm(heard)
    problems = [f"expected to hear {p!r}" for p in listen.expect if _norm(p) not in said]
    if listen.expect_any and not any(_norm(p) in said for p in listen.expect_any):
        problems.append(f"expected to hear one of {listen.expect_any}")
    problems += [f"did not expect to hear {p!r}" for p in listen.reject if _norm(p) in said]
    return problems


def _heard_since(report: CallReport, since: float) -> AgentTurn:
    """The agent's audio the caller heard after `since`, from a finished call's report."""
    rate = report.sample_rate or 24000
    segs = [(a, b) for a, b in report.heard_segments if b > since]
    if not segs:
        return AgentTurn(None, None, b"", rate, [])
    first, last = max(segs[0][0], since), segs[-1][1]
    pcm = report.heard_pcm[int(first * rate) * 2 : int(last * rate) * 2]
    return AgentTurn(first, last, pcm, rate, [t for t in report.stop_audio_times if t >= since])


class ScenarioRun:
    def __init__(
        self,
        stack: Stack,
        scenario: Scenario,
        voice: CallerVoice,
        *,
        transcribe: bool = True,
        replicas: list[Stack] | None = None,
    ) -> None:
        self.stack = stack  # its emulator places the call
        self.stacks = replicas or [stack]  # every replica of the service
        self.transcribe = transcribe
        self.scenario = scenario
        self.voice = voice
        self.result = ScenarioResult(scenario)
        self._last_said: SaidSpan | None = None
        self._cursor = 0.0  # the media time from which the next listen collects audio
        self._hung_up = False

    async def run(self) -> ScenarioResult:
        sc = self.scenario
        started = time.monotonic()
        for number, behaviour in sc.humans.items():
            self.stack.emulator.humans.set(number, behaviour)
        call = await self.stack.emulator.start_call(
            CallScript(
                audio=b"",
                from_number=sc.caller.from_number,
                to_number=sc.caller.to_number,
                caller_display_name=sc.caller.display_name,
                custom_context={"sipHeaders": dict(sc.caller.sip_headers)}
                if sc.caller.sip_headers
                else {},
                max_duration_s=sc.max_duration_s,
                network=_network(sc.network),
            )
        )
        try:
            await call.wait_media()
            for i, step in enumerate(sc.steps):
                res = StepResult(i + 1, step.kind)
                self.result.steps.append(res)
                try:
                    await self._step(call, step, res)
                except CallEndedError as exc:
                    res.problems.append(f"the call ended before this step: {exc}")
                    break
                except TimeoutError as exc:
                    res.problems.append(str(exc) or "timed out")
            if not self._hung_up:
                report = await call.ended(timeout_s=20.0)
            else:
                report = call.report
        except (CallEndedError, TimeoutError) as exc:
            self.result.problems.append(f"call failed: {exc}")
            report = await call.hang_up() if call.is_active else call.report
        self.result.report = report
        self.result.duration_s = time.monotonic() - started
        await self._check_outcome(report)
        return self.result

    async def _step(self, call: LiveCaller, step: Step, res: StepResult) -> None:
        if step.say is not None:
            pcm = await self.voice.speak(step.say, self.scenario.caller.length_scale)
            self._cursor = call.mark()
            self._last_said = await call.say(pcm, self.voice.rate)
            res.text = step.say
        elif step.press is not None:
            self._cursor = call.mark()
            presses = await call.press(step.press)
            end = presses[-1][0] if presses else call.mark()
            self._last_said = SaidSpan(self._cursor, end, end)
            res.text = step.press
        elif step.wait is not None:
            await call.silence(step.wait)
        elif step.listen is not None:
            await self._listen(call, step.listen, res)
        elif step.barge_in is not None:
            await self._barge_in(call, step.barge_in, res)
        elif step.hang_up:
            await call.hang_up()
            self._hung_up = True
        elif step.move:
            await self._move(call, res)

    def _holder(self, correlation_id: str, but: Stack | None = None) -> Stack | None:
        """The replica holding the call, its media attached."""
        for stack in self.stacks:
            if stack is not but and any(
                s.info.correlation_id == correlation_id and s.media_attached and not s.ended
                for s in stack.edge.calls.values()
            ):
                return stack
        return None

    async def _move(self, call: LiveCaller, res: StepResult) -> None:
        """Stop the replica holding the call, as a rolling restart does (SIGTERM's drain:
        it leaves the balancer and hands its calls over), and wait for the call to come
        back on another replica."""
        correlation = call.report.correlation_id
        holder = self._holder(correlation)
        if holder is None or holder.drain is None or len(self.stacks) < 2:
            res.problems.append("no replica to move the call from (the scenario needs replicas)")
            return
        started = time.monotonic()
        drained = asyncio.ensure_future(holder.drain())
        new = None
        while new is None and time.monotonic() - started < 15.0:
            await asyncio.sleep(0.05)
            new = self._holder(correlation, but=holder)
        await drained
        if new is None:
            res.problems.append(f"the call did not move off {holder.settings.replica_id}")
            return
        took = time.monotonic() - started
        res.text = f"{holder.settings.replica_id} → {new.settings.replica_id} in {took:.2f} s"

    async def _listen(self, call: LiveCaller, listen: Listen, res: StepResult) -> None:
        try:
            turn = await call.wait_agent_quiet(
                since=self._cursor, quiet_s=listen.quiet_s, timeout_s=listen.within_s + 30.0
            )
        except CallEndedError:
            # The agent may say goodbye and hang up: what it said before is what counts.
            turn = _heard_since(call.report, self._cursor)
            self._hung_up = True
        self._cursor = call.mark() if call.is_active else self._cursor
        log.debug("heard %.2f s from %.2f", turn.duration_s, turn.first_audio_s or -1)
        listen_checks = listen.expect or listen.expect_any or listen.reject
        if self.transcribe or listen_checks:
            res.text = await transcribe_heard(turn.pcm, turn.rate)
            res.problems += _check_heard(res.text, listen)
        said = self._last_said
        if said is not None and turn.first_audio_s is not None:
            if turn.first_audio_s >= said.speech_end_s:
                res.latency_ms = round((turn.first_audio_s - said.speech_end_s) * 1000, 1)
            if listen.max_latency_ms is not None and (
                res.latency_ms is None or res.latency_ms > listen.max_latency_ms
            ):
                res.problems.append(
                    f"reply latency {res.latency_ms} ms is over {listen.max_latency_ms:g} ms"
                )
        self._last_said = None

    async def _barge_in(self, call: LiveCaller, barge: BargeIn, res: StepResult) -> None:
        await call.wait_agent_speaking(since=self._cursor, timeout_s=15.0)
        await call.silence(barge.after_s)
        pcm = await self.voice.speak(barge.say, self.scenario.caller.length_scale)
        start = call.mark()
        said = await call.say(pcm, self.voice.rate)
        self._last_said = said
        self._cursor = said.end_s
        res.text = barge.say
        onset = start + _onset_s(pcm, self.voice.rate)
        stops = [t for t in call.report.stop_audio_times if t >= onset - 0.05]
        if not stops:
            res.problems.append("the agent did not stop talking when the caller barged in")
            return
        res.barge_in_ms = round(max(0.0, stops[0] - onset) * 1000, 1)
        if res.barge_in_ms > barge.max_stop_ms:
            res.problems.append(
                f"StopAudio came {res.barge_in_ms} ms after the caller's onset "
                f"(over {barge.max_stop_ms:g} ms)"
            )

    def _sessions(self, report: CallReport) -> list[CallSession]:
        """The call's sessions on every replica that held it; the one that ended it last."""
        held = [
            session
            for stack in self.stacks
            for session in stack.edge.finished
            if session.info.correlation_id == report.correlation_id
        ]
        return sorted(held, key=lambda s: not s.handed_over)

    async def _check_line(self, session: CallSession, line: str) -> None:
        records = self.stack.records
        await records.writer.flush()
        detail = await records.store.get_call(session.call_id)
        stored = detail.call.profile if detail is not None else None
        if session.line.name != line or stored != line:
            self.result.problems.append(
                f"expected the call on line {line!r}, got {session.line.name!r} "
                f"(its record says {stored!r})"
            )

    async def _check_outcome(self, report: CallReport) -> None:
        exp = self.scenario.expect
        problems = self.result.problems
        sessions: list[CallSession] = []
        for _ in range(50):  # the service records the call as it finishes ending it
            sessions = self._sessions(report)
            if sessions and not sessions[-1].handed_over:
                break
            await asyncio.sleep(0.1)
        if not sessions:
            problems.append("the service has no record of this call")
            return
        session = sessions[-1]
        self.result.tools = [r.name for s in sessions for r in s.tool_runs]

        self.result.transferred_to = session.transferred_to or report.transfer_target
        self.result.end_reason = session.end_reason or ""
        self.result.timings = [dict(t.__dict__) for s in sessions for t in s.agent_timings]
        problems += [f"tool {t} did not run" for t in exp.tools if t not in self.result.tools]
        failed = {r.name for r in session.tool_runs if not r.ok}
        problems += [f"tool {t} did not fail" for t in exp.tool_errors if t not in failed]
        if exp.transfer_context:
            got_ctx = _flat_context(report.custom_context)
            for key, want in exp.transfer_context.items():
                value = got_ctx.get(key.lower())
                if value is None or (want != "*" and value != want):
                    problems.append(f"transfer context {key}={value!r}, expected {want!r}")
        ivr = session.menu_choice
        if exp.routed_to is not None and (ivr is None or ivr.route != exp.routed_to):
            problems.append(f"expected the menu to route to {exp.routed_to}, got {ivr}")
        if exp.menu_digits is not None and (ivr is None or ivr.digits != exp.menu_digits):
            problems.append(f"expected menu digits {exp.menu_digits}, got {ivr}")
        if exp.line is not None:
            await self._check_line(session, exp.line)
        if exp.recording is not None:
            await asyncio.sleep(0.3)  # the file is finished just after the call ends
            path = session.recording_path
            exists = bool(path) and await asyncio.to_thread(Path(path or "").is_file)
            if exists != exp.recording:
                problems.append(f"recording {'missing' if exp.recording else 'made'}: {path}")
        problems += [f"tool {t} ran" for t in exp.no_tools if t in self.result.tools]
        if exp.transferred_to is not None:
            got = (self.result.transferred_to or "").removeprefix("4:")
            if got != exp.transferred_to:
                problems.append(f"expected a transfer to {exp.transferred_to}, got {got or 'none'}")
        if exp.ended_by is not None and report.ended_by != exp.ended_by:
            problems.append(f"expected the call to end by {exp.ended_by}, not {report.ended_by}")
        if exp.max_duration_s is not None and report.duration_s > exp.max_duration_s:
            problems.append(f"the call lasted {report.duration_s:.1f} s")
        if exp.max_gaps is not None and report.underruns > exp.max_gaps:
            problems.append(f"the caller heard {report.underruns} gaps in the agent's speech")
        if exp.media_reopened is not None and report.media_reconnects != exp.media_reopened:
            problems.append(
                f"expected {exp.media_reopened} reopened media sockets, "
                f"got {report.media_reconnects} ({report.media_drops} dropped)"
            )


def _network(net: Network | None) -> NetworkConditions | None:
    if net is None:
        return None
    return NetworkConditions(
        delay_ms=net.delay_ms,
        jitter_p99_ms=net.jitter_p99_ms,
        stalls=tuple(net.stalls),
        drops=tuple(net.drops),
        reconnect_after_s=net.reconnect_after_s,
    )


async def run_scenarios(
    stack: Stack, scenarios: list[Scenario], *, concurrency: int = 3, transcribe: bool = True
) -> list[ScenarioResult]:
    voice = CallerVoice()
    gate = asyncio.Semaphore(concurrency)

    async def one(sc: Scenario) -> ScenarioResult:
        async with gate:
            log.info("scenario %s: starting", sc.name)
            result = await ScenarioRun(stack, sc, voice, transcribe=transcribe).run()
            log.info("scenario %s: %s", sc.name, "pass" if result.ok else "FAIL")
            return result

    return list(await asyncio.gather(*(one(sc) for sc in scenarios)))


def _flat_context(ctx: dict[str, Any] | None) -> dict[str, str]:
    """SIP and VoIP headers of a customCallingContext, by lower-cased name."""
    out: dict[str, str] = {}
    for group in (ctx or {}).values():
        if isinstance(group, dict):
            out.update({str(k).lower(): str(v) for k, v in group.items()})
    return out


async def run_scenario_files(
    scenarios: list[Scenario],
    *,
    agent: str = "local",
    profile: str | None = None,
    concurrency: int = 3,
    transcribe: bool = True,
) -> list[ScenarioResult]:
    """Run scenarios, one service (with its emulator) per agent profile they name."""
    from callbridge.devstack import running_stack

    # One service per profile; one of its own for a scenario with several replicas (its
    # moves stop them).
    groups: dict[tuple[str | None, str], list[Scenario]] = {}
    for sc in scenarios:
        groups.setdefault((sc.profile or profile, sc.path if sc.replicas > 1 else ""), []).append(
            sc
        )
    results: dict[int, ScenarioResult] = {}

    async def run_group(path: str | None, group: list[Scenario]) -> None:
        overrides: dict[str, Any] = {"agent": agent}
        if path:
            overrides["profile"] = path
        if group[0].replicas > 1:
            (sc,) = group
            results[id(sc)] = await _run_on_replicas(sc, overrides, transcribe=transcribe)
            return
        async with running_stack(**overrides) as stack:
            done = await run_scenarios(stack, group, concurrency=concurrency, transcribe=transcribe)
        for sc, res in zip(group, done, strict=True):
            results[id(sc)] = res

    for (path, _), group in groups.items():
        await run_group(path, group)
    return [results[id(sc)] for sc in scenarios]


async def _run_on_replicas(
    sc: Scenario, overrides: dict[str, Any], *, transcribe: bool
) -> ScenarioResult:
    """`sc.replicas` replicas behind HAProxy with Redis and one records file."""
    from callbridge.devstack import running_replicas

    with tempfile.TemporaryDirectory(prefix="callbridge-scenario-") as scratch:
        async with running_replicas(
            sc.replicas,
            balancer=True,
            redis_url=os.environ.get("CALLBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0"),
            redis_prefix=f"cbscenario:{secrets.token_hex(5)}:",
            signing_key=secrets.token_urlsafe(32),
            database_url=f"sqlite+aiosqlite:///{Path(scratch) / 'calls.db'}",
            recordings_dir=str(Path(scratch) / "recordings"),
            **overrides,
        ) as stacks:
            voice = CallerVoice()
            run = ScenarioRun(stacks[0], sc, voice, transcribe=transcribe, replicas=stacks)
            return await run.run()


def format_table(results: list[ScenarioResult]) -> str:
    lines = []
    width = max([len(r.scenario.name) for r in results] + [8])
    lines.append(
        f"{'scenario':<{width}}  result  turns  latency ms (per turn)          barge-in ms"
    )
    for r in results:
        lat = ", ".join(f"{v:.0f}" for v in r.latencies_ms) or "-"
        barge = ", ".join(f"{s.barge_in_ms:.0f}" for s in r.steps if s.barge_in_ms is not None)
        lines.append(
            f"{r.scenario.name:<{width}}  {'pass' if r.ok else 'FAIL':<6}  "
            f"{len(r.latencies_ms):>5}  {lat:<30}  {barge or '-'}"
        )
        for s in r.steps:
            for p in s.problems:
                lines.append(f"{'':<{width}}    step {s.index} ({s.kind}): {p}")
            if s.problems and s.kind == "listen":
                lines.append(f"{'':<{width}}      heard: {s.text!r}")
        for p in r.problems:
            lines.append(f"{'':<{width}}    {p}")
    passed = sum(r.ok for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)
