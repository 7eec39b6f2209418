// Watching a running game from the console: the game's frames over a read-only
// socket, drawn by the participant page's own renderer, and who controls each
// agent, refreshed every second. Nothing is sent back.

import { Renderer } from './renderer.js';
import { el } from './scenes.js';

const box = document.getElementById('watch');
const status = document.getElementById('watch-status');
const seats = document.getElementById('seats');
const renderer = new Renderer(() => {});
renderer.configure(JSON.parse(box.dataset.scene));
document.getElementById('stage').append(renderer.canvas);
renderer.start();

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const socket = new WebSocket(`${scheme}//${location.host}/console/games/${box.dataset.game}/frames`);
socket.binaryType = 'arraybuffer';
socket.onopen = () => { status.textContent = 'live'; };
socket.onmessage = (event) => {
  if (event.data instanceof ArrayBuffer) {
    const header = renderer.applyBinary(event.data);
    if (header) status.textContent = `live · episode ${header.episode}, step ${header.step}`;
    return;
  }
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return;
  }
  if (msg.type === 'frame') {
    renderer.applyFrame(msg);
    status.textContent = `live · episode ${msg.episode}, step ${msg.step}`;
  } else if (msg.type === 'seats') {
    seats.replaceChildren(...msg.seats.map((s) =>
      el('li', { class: 'seat' }, `${s.agent_name}: ${s.controller}`)));
  } else if (msg.type === 'ended') {
    status.textContent = 'the game has ended';
    status.dataset.ended = 'true';
  }
};
socket.onclose = () => {
  if (!status.dataset.ended) status.textContent = 'disconnected (the game ended, or the login did)';
  status.dataset.ended = 'true';
};
