// The study's WebSocket (see socketUrl): reconnects with backoff and hands each message to the
// handler for its `type` (binary pixel frames to "binary"). It answers nothing
// itself, so every reply is decided in app.js, and it stops for good on the two
// closes a retry cannot fix: 4001 (unknown browser) and 4002 (another tab).

const CLOSE_UNKNOWN = 4001;
const CLOSE_REPLACED = 4002;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 10000;

/** The study's socket, `ws` beside the page (`/ws`, or `/s/ID/ws` on a server
 *  with several studies), ws: or wss: to match the page. */
export function socketUrl(location) {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

/** The subprotocols the socket offers: with a key (an MTurk frame, where no
 *  cookie is sent), the key rides in the handshake's header, never in a URL
 *  that proxies log; a browser that cannot inflate pixel deltas asks for
 *  whole frames. */
export function socketProtocols(key, inflates = canInflateDeltas()) {
  const offered = [];
  if (key && /^[A-Za-z0-9]+$/.test(key)) offered.push(`tandem.key.${key}`);
  if (!inflates) offered.push('tandem.whole-pixels');
  return offered.length ? ['tandem.v1', ...offered] : [];
}

/** Whether this browser has what pixel deltas need. */
function canInflateDeltas() {
  try {
    new DecompressionStream('deflate-raw'); // eslint-disable-line no-new
    return typeof OffscreenCanvas === 'function';
  } catch {
    return false;
  }
}

/** This participant's key, when the page has one: given in a <meta> by the
 *  server, then kept in the page's own URL fragment, which no server sees and
 *  a reload of the frame keeps. Only MTurk participants' pages have one. */
export function participantKey(document, location, history) {
  const given = document.querySelector('meta[name="tandem-key"]')?.content;
  // A kept key counts only on a page that needs one: a link crafted with
  // someone else's key in its fragment must not make another page theirs.
  const needs = !!document.querySelector('meta[name="tandem-needs-key"]');
  const kept = needs ? new URLSearchParams(location.hash.slice(1)).get('k') : null;
  const key = given || kept || null;
  if (key && key !== kept) {
    history.replaceState(history.state, '', `${location.pathname}${location.search}#k=${key}`);
  }
  return key;
}

export class Socket {
  /** `onState` gets "connecting" (first try), "open", "reconnecting", and the
   *  final "replaced" or "unknown". */
  constructor(url, onState, protocols = []) {
    this.url = url;
    this.protocols = protocols;
    this.onState = onState;
    this.handlers = new Map();
    this.ws = null;
    this.attempt = 0;
    this.everOpened = false;
    this.final = false;
    this.timer = 0;
  }

  /** Registers the handler for one message type (one per type, last one wins). */
  on(type, handler) {
    this.handlers.set(type, handler);
    return this;
  }

  connect() {
    if (this.final) return;
    this.onState(this.everOpened ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.url, this.protocols);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      this.everOpened = true;
      this.onState('open');
    };
    ws.onmessage = (event) => {
      this.attempt = 0; // the server talks to us: back off from scratch next time
      this.dispatch(event.data);
    };
    // An error is always followed by a close, so the close decides what happens.
    ws.onclose = (event) => {
      if (this.ws !== ws) return undefined;
      this.ws = null;
      if (event.code === CLOSE_REPLACED) return this.stop('replaced');
      if (event.code === CLOSE_UNKNOWN) return this.stop('unknown');
      // Exponential backoff with jitter, so a restarted server is not hit by
      // every participant in the same millisecond.
      const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
      this.attempt += 1;
      this.onState(this.everOpened ? 'reconnecting' : 'connecting');
      this.timer = setTimeout(() => this.connect(), delay);
      return undefined;
    };
    this.ws = ws;
  }

  /** Sends a JSON message; false when there is no open socket to send it on. */
  send(message) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Stops for good: no more reconnects, the socket (if any) is closed. */
  stop(state) {
    if (this.final) return;
    this.final = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    this.onState(state);
  }

  dispatch(data) {
    if (data instanceof ArrayBuffer) {
      this.handlers.get('binary')?.(data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return console.warn('tandem: unreadable message', data);
    }
    const handler = this.handlers.get(message?.type);
    return handler ? handler(message) : console.warn('tandem: unhandled message', message);
  }
}
