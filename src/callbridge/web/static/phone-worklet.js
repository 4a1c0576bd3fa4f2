// The browser phone's two AudioWorklet processors, on the audio rendering thread:
//   pcm-capture  microphone (context rate) -> 16-bit mono PCM at the call's rate, 20 ms frames
//   pcm-player   the agent's 16-bit PCM (call rate) -> speakers, through a queue that a
//                "flush" message empties at once (barge-in)
// They run here rather than on the page's main thread so that layout, GC or a busy tab
// cannot make the caller's audio stutter or the agent's voice drop out.

// RBJ cookbook low-pass biquad (direct form I).
class LowPass {
  constructor(cutoff, rate, q) {
    const w = (2 * Math.PI * cutoff) / rate;
    const alpha = Math.sin(w) / (2 * q);
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    this.b0 = (1 - cos) / 2 / a0;
    this.b1 = (1 - cos) / a0;
    this.b2 = this.b0;
    this.a1 = (-2 * cos) / a0;
    this.a2 = (1 - alpha) / a0;
    this.x1 = this.x2 = this.y1 = this.y2 = 0;
  }

  run(block) {
    for (let i = 0; i < block.length; i++) {
      const x = block[i];
      const y = this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2;
      this.x2 = this.x1;
      this.x1 = x;
      this.y2 = this.y1;
      this.y1 = y;
      block[i] = y;
    }
  }
}

// 6th-order Butterworth as three biquads: flat speech band, and enough rejection above
// the new Nyquist that downsampling folds no audible hiss back into it.
function antiAlias(outRate, inRate) {
  const cutoff = 0.42 * outRate;
  return [0.5176, 0.7071, 1.9319].map((q) => new LowPass(cutoff, inRate, q));
}

// Linear interpolation over an endless stream at any ratio; the position and the last
// sample carry over between blocks so there is no click at block edges.
class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate;
    this.reset();
  }

  reset() {
    this.t = 0;
    this.prev = 0;
  }

  // Calls emit(sample) for each output sample of `block`.
  run(block, emit) {
    const n = block.length;
    let t = this.t;
    while (t < n) {
      const i = Math.floor(t);
      const a = i === 0 ? this.prev : block[i - 1];
      emit(a + (block[i] - a) * (t - i));
      t += this.step;
    }
    this.t = t - n;
    this.prev = block[n - 1];
  }
}

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const rate = options.processorOptions.rate;
    this.filters = sampleRate > rate ? antiAlias(rate, sampleRate) : [];
    this.resampler = new Resampler(sampleRate, rate);
    this.frameSamples = Math.round(rate / 50); // 20 ms
    this.newFrame();
    this.scratch = new Float32Array(128);
    this.emit = (s) => {
      const v = Math.max(-1, Math.min(1, s));
      this.peak = Math.max(this.peak, Math.abs(v));
      this.frame[this.fill++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.fill === this.frameSamples) {
        this.port.postMessage({ pcm: this.frame.buffer, peak: this.peak }, [this.frame.buffer]);
        this.newFrame();
      }
    };
  }

  newFrame() {
    this.frame = new Int16Array(this.frameSamples);
    this.fill = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (this.scratch.length !== (channel ? channel.length : 128)) {
      this.scratch = new Float32Array(channel ? channel.length : 128);
    }
    // No input yet (or a stalled track) still moves time on: silence, not a gap.
    if (channel) this.scratch.set(channel);
    else this.scratch.fill(0);
    for (const filter of this.filters) filter.run(this.scratch);
    this.resampler.run(this.scratch, this.emit);
    return true;
  }
}

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.resampler = new Resampler(options.processorOptions.rate, sampleRate);
    this.chunks = [];
    this.head = 0; // read position in chunks[0]
    this.queued = 0; // samples waiting, at the context rate
    this.played = 0; // samples of agent audio played in all
    this.playing = false;
    this.idle = 0; // samples of silence since the queue ran dry
    this.sinceReport = 0;
    this.port.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) this.enqueue(event.data);
      else if (event.data && event.data.type === "flush") this.flush();
    };
  }

  enqueue(buffer) {
    const pcm = new Int16Array(buffer);
    const input = new Float32Array(pcm.length);
    const out = new Float32Array(Math.ceil(pcm.length / this.resampler.step) + 2);
    let n = 0;
    for (let i = 0; i < pcm.length; i++) input[i] = pcm[i] / 0x8000;
    if (input.length) this.resampler.run(input, (s) => { out[n++] = s; });
    if (n) {
      this.chunks.push(out.subarray(0, n));
      this.queued += n;
    }
  }

  flush() {
    const dropped = this.queued;
    this.chunks = [];
    this.head = 0;
    this.queued = 0;
    this.resampler.reset();
    this.port.postMessage({ type: "flushed", droppedMs: Math.round((dropped / sampleRate) * 1000) });
    this.setPlaying(false);
  }

  setPlaying(playing) {
    if (this.playing === playing) return;
    this.playing = playing;
    this.report();
  }

  report() {
    this.sinceReport = 0;
    this.port.postMessage({ type: "state", playing: this.playing, playedMs: Math.round((this.played / sampleRate) * 1000) });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.chunks.length) {
      const chunk = this.chunks[0];
      const n = Math.min(out.length - written, chunk.length - this.head);
      out.set(chunk.subarray(this.head, this.head + n), written);
      written += n;
      this.head += n;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.queued -= written;
    this.played += written;
    if (written) {
      this.idle = 0;
      this.setPlaying(true);
    } else {
      this.idle += out.length;
      // A short gap between two chunks is jitter, not the end of the reply.
      if (this.playing && this.idle > sampleRate * 0.3) this.setPlaying(false);
    }
    this.sinceReport += out.length;
    if (this.playing && this.sinceReport > sampleRate / 4) this.report();
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
registerProcessor("pcm-player", PcmPlayer);
