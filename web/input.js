// Keyboard for game scenes. The server wants the set of held keys, not events, so
// this sends the set on every change and every 500 ms while any key is held. Keys
// are tracked by KeyboardEvent.code so a key released after Shift renamed it ("a"
// down, "A" up) is still released; only keys the scene maps are tracked.

const REPEAT_MS = 500;
const MAX_PENDING = 256;
const LATENCY_WINDOW = 64;

export class Keyboard {
  /** `send(message)` is false when it could not send; `frame()` reads the
   *  renderer's animation-frame counter, `tick()` the server tick of the frame
   *  on screen. */
  constructor(send, frame, tick) {
    this.send = send;
    this.frame = frame;
    this.tick = tick;
    this.keys = null; // Set of key names the active scene maps; null when inactive
    this.held = new Map(); // KeyboardEvent.code -> key name
    this.seq = 0; // of the last input sent; any socket accepts a rising seq
    this.timer = 0;
    this.sentAt = new Map(); // seq -> performance.now() at send, until acked
    this.latencies = []; // the last LATENCY_WINDOW input-to-frame times, ms
    addEventListener('keydown', (e) => this.onKey(e, true));
    addEventListener('keyup', (e) => this.onKey(e, false));
    addEventListener('blur', () => this.releaseAll());
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.releaseAll();
    });
  }

  /** Listens for a game scene that maps `keys` (null: stops listening). Keys still
   *  held are released first and the server told, as it keeps them across scenes. */
  activate(keys) {
    this.releaseAll();
    this.keys = keys ? new Set(keys) : null;
  }

  /** The name the scene maps this event's key by, or undefined. Letters may come
   *  upper-case (Shift, Caps Lock) while the map spells them lower-case. */
  nameOf(event) {
    const key = event.key === ' ' ? 'Space' : String(event.key);
    return [key, key.toLowerCase(), key.toUpperCase()].find((k) => this.keys.has(k));
  }

  onKey(event, down) {
    if (!this.keys) return;
    const code = event.code || event.key;
    if (!down) {
      if (this.held.delete(code)) this.transmit();
      return;
    }
    const name = this.nameOf(event);
    if (!name) return;
    // No scrolling on arrows or Space, but browser shortcuts (Ctrl+R, Cmd+W…) work.
    const shortcut = event.metaKey || (event.ctrlKey && name !== 'Control') || (event.altKey && name !== 'Alt');
    if (!shortcut) event.preventDefault();
    if (this.held.get(code) === name) return; // auto-repeat
    this.held.set(code, name);
    this.transmit();
  }

  /** Tells a new socket at once what is held (it starts knowing nothing). */
  resend() {
    if (this.held.size) this.transmit();
  }

  releaseAll() {
    if (this.held.size === 0) return;
    this.held.clear();
    this.transmit();
  }

  /** Sends the held set now, then again every REPEAT_MS while anything is held. */
  transmit() {
    clearTimeout(this.timer);
    this.timer = 0;
    const seq = this.seq + 1;
    const ts = performance.now();
    const keys = [...new Set(this.held.values())].sort();
    if (this.send({ type: 'input', seq, frame: this.frame(), ts, tick: this.tick(), keys })) {
      this.seq = seq;
      this.sentAt.set(seq, ts);
      if (this.sentAt.size > MAX_PENDING) this.sentAt.delete(this.sentAt.keys().next().value);
    }
    if (this.held.size > 0) this.timer = setTimeout(() => this.transmit(), REPEAT_MS);
  }

  /** Records the latency of each input this frame acks for the first time. */
  acknowledge(ack) {
    for (const [seq, ts] of this.sentAt) {
      if (ack == null || seq > ack) break;
      this.sentAt.delete(seq);
      this.latencies.push(performance.now() - ts);
    }
    this.latencies.splice(0, this.latencies.length - LATENCY_WINDOW);
  }

  /** Mean input-to-frame latency over the recent window, in ms (null before any). */
  get latency() {
    const n = this.latencies.length;
    return n ? this.latencies.reduce((a, b) => a + b, 0) / n : null;
  }
}
