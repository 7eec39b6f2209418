// Heads-up display for games: episode k of n, time left, score, last return. Time
// left counts down locally between `game` messages, so it moves whatever rate the
// server reports at. Only the status line is a live region: a clock read aloud
// every second would drown everything else.

const NAMES = { episode: 'Episode', time: 'Time left', score: 'Score', last: 'Last return' };

export class Hud {
  constructor() {
    this.el = Object.assign(document.createElement('div'), { className: 'hud' });
    this.status = Object.assign(document.createElement('p'), { className: 'hud-status' });
    this.status.setAttribute('role', 'status');
    const list = document.createElement('dl');
    this.items = {};
    this.fields = {};
    for (const [key, label] of Object.entries(NAMES)) {
      const item = document.createElement('div');
      item.append(Object.assign(document.createElement('dt'), { textContent: label }));
      this.fields[key] = item.appendChild(document.createElement('dd'));
      this.items[key] = list.appendChild(item);
    }
    this.el.append(this.status, list);
    this.timer = 0;
  }

  /** Clears everything for a new game scene. */
  reset(scene) {
    this.game({ status: null, episode: 0, episodes_total: scene.episodes, time_left_s: scene.time_limit_s });
    this.set('score', '–');
    this.set('last', '–');
  }

  /** Applies a `game` message. */
  game(msg) {
    const k = (msg.episode ?? 0) + 1;
    const n = msg.episodes_total;
    this.set('episode', n == null ? String(k) : `${Math.min(k, n)} of ${n}`);
    if (msg.last_return != null) this.set('last', number(msg.last_return));
    clearInterval(this.timer);
    const left = msg.time_left_s;
    this.items.time.hidden = left == null;
    if (left != null) {
      const deadline = performance.now() + left * 1000;
      const tick = () => {
        const ms = deadline - performance.now();
        this.set('time', clock(Math.max(0, ms) / 1000));
        if (ms <= 0) clearInterval(this.timer);
      };
      tick();
      if (msg.status === 'playing') this.timer = setInterval(tick, 250);
    }
    const status = { waiting: 'Waiting for the game to start…', playing: 'Playing', ended: 'The game has ended.' };
    this.set(this.status, status[msg.status] || '');
  }

  /** Applies a frame's running return. */
  frame(meta) {
    if (meta.return != null) this.set('score', number(meta.return));
  }

  /** Sets a field (by key) or node's text, touching the DOM only on change. */
  set(field, text) {
    const node = this.fields[field] || field;
    if (node.textContent !== text) node.textContent = text;
  }
}

function clock(seconds) {
  const s = Math.ceil(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function number(x) {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}
