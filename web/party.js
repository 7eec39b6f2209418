// Multiplayer on the page: the lobby panel while waiting for partners, the seat
// badge (which agent you play and what your keys do), and notices about
// partners (left, back, replaced by an AI, game ended early). State that
// end-to-end tests read is mirrored on the DOM: body[data-lobby, data-agent,
// data-input] and #notice[data-code].

import { el } from './scenes.js';

const NOTICE_MS = 12000;

export class Party {
  constructor() {
    this.lobbyEl = el('div', { id: 'lobby', class: 'lobby', role: 'status' });
    this.seatEl = el('div', { id: 'seat', class: 'seat' });
    this.noticeEl = el('div', { id: 'notice', class: 'notice-bar', role: 'status', 'aria-live': 'assertive' });
    this.noticeEl.hidden = true;
    this.flashEl = el('div', { class: 'feedback-flash', 'aria-hidden': 'true' });
    this.noticeTimer = 0;
    this.feedback = null; // Map key name -> value, while a feedback seat is active
    addEventListener('keydown', (e) => this.onKey(e));
  }

  /** Mounts the panels of a game scene: the lobby over `stage`, the seat in `slot`. */
  mount(stage, slot) {
    this.reset();
    stage.classList.add('has-overlay');
    stage.append(this.lobbyEl, this.flashEl);
    slot.append(this.seatEl);
  }

  /** Clears lobby and seat (a new scene); notices stay, they explain the move. */
  reset() {
    this.lobbyEl.hidden = true;
    this.lobbyEl.replaceChildren();
    this.seatEl.replaceChildren();
    this.seatEl.hidden = true;
    this.feedback = null;
    delete document.body.dataset.lobby;
    delete document.body.dataset.agent;
    delete document.body.dataset.input;
  }

  /** Applies a `lobby` message. */
  lobby(msg) {
    const waiting = Number(msg.waiting) || 0;
    const needed = Number(msg.needed) || 2;
    const parts = [
      el('p', { class: 'lobby-title', text: 'Waiting for other participants…' }),
      el('p', { text: `${waiting} of ${needed} here. You have waited ${clock(msg.waited_s)}.` }),
    ];
    if (msg.timeout_s != null) {
      const left = Math.max(0, msg.timeout_s - msg.waited_s);
      parts.push(el('p', { class: 'hint', text: `The game starts in at most ${clock(left)}, with an AI partner if nobody else arrives.` }));
    }
    this.lobbyEl.replaceChildren(...parts);
    this.lobbyEl.dataset.waiting = String(waiting);
    this.lobbyEl.hidden = false;
    document.body.dataset.lobby = 'waiting';
  }

  /** Applies a `seat` message: the game has started for this participant. */
  seat(msg) {
    const seat = msg.seat || {};
    this.lobbyEl.hidden = true;
    document.body.dataset.lobby = 'seated';
    document.body.dataset.agent = String(seat.agent);
    document.body.dataset.input = seat.input || '';
    const lines = [el('p', {}, 'You play ', el('strong', { text: seat.agent_name || `agent ${seat.agent}` }), '.')];
    if (seat.input === 'feedback') {
      const keys = (seat.feedback || []).map((f) => `${label(f.key)} (${f.value > 0 ? '+' : ''}${f.value})`);
      lines.push(el('p', { class: 'hint', text: `An AI plays. Press ${keys.join(' or ')} to tell it how well it is doing.` }));
      this.feedback = new Map((seat.feedback || []).map((f) => [f.key, f.value]));
    } else if (seat.input === 'correction') {
      lines.push(el('p', { class: 'hint', text: 'An AI plays. Hold a game key to take over; let go to hand back.' }));
    }
    for (const other of msg.others || []) {
      const who = other.human ? 'another participant' : 'an AI';
      lines.push(el('p', { class: 'hint', text: `${other.agent_name}: ${who}.` }));
    }
    this.seatEl.replaceChildren(...lines);
    this.seatEl.hidden = false;
  }

  /** Applies a `notice` message. */
  notice(msg) {
    clearTimeout(this.noticeTimer);
    this.noticeEl.textContent = msg.text || '';
    this.noticeEl.dataset.code = msg.code || '';
    this.noticeEl.hidden = false;
    this.noticeTimer = setTimeout(() => { this.noticeEl.hidden = true; }, NOTICE_MS);
  }

  /** Shows what a feedback key press gave, briefly, over the game. */
  onKey(event) {
    if (!this.feedback || event.repeat) return;
    const key = event.key === ' ' ? 'Space' : event.key;
    const value = this.feedback.get(key) ?? this.feedback.get(key.toLowerCase());
    if (value == null) return;
    this.flashEl.textContent = `${value > 0 ? '+' : ''}${value}`;
    this.flashEl.dataset.sign = value >= 0 ? 'plus' : 'minus';
    this.flashEl.classList.remove('show');
    void this.flashEl.offsetWidth; // restart the fade
    this.flashEl.classList.add('show');
  }
}

const ARROWS = { ArrowUp: '↑', ArrowDown: '↓', ArrowLeft: '←', ArrowRight: '→' };

function label(key) {
  return ARROWS[key] || key;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
