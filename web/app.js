// Entry point: wires socket, scene views, renderer, HUD and keyboard, and is the
// one place that decides what a message does. State that end-to-end tests read is
// mirrored on the DOM: body[data-scene, data-scene-id, data-connected] here and
// the canvas's data-frames and data-tick in the renderer. Timing reports (frames
// shown, clock answers, page visibility) go from here too.

import { Socket, participantKey, socketProtocols, socketUrl } from './socket.js';
import { renderScene } from './scenes.js';
import { Renderer } from './renderer.js';
import { Keyboard } from './input.js';
import { Hud } from './hud.js';
import { Party } from './party.js';

const PROTOCOL = 1;
const main = document.getElementById('app');
const banner = document.getElementById('banner');
const { body } = document;

const hud = new Hud();
const party = new Party();
main.before(party.noticeEl);
const renderer = new Renderer((meta) => {
  hud.frame(meta);
  keyboard.acknowledge(meta.ack);
  if (keyboard.latency != null) renderer.canvas.dataset.latencyMs = keyboard.latency.toFixed(1);
});
const key = participantKey(document, location, history);
const socket = new Socket(socketUrl(location), showConnection, socketProtocols(key));
const keyboard = new Keyboard((message) => socket.send(message), () => renderer.frame, () => renderer.shownTick);
const SHOWN_EVERY_MS = 500;
let view = null;

socket
  .on('hello', (msg) => {
    if (msg.protocol !== PROTOCOL) return setBanner('error', 'This page is out of date. Please reload it.', 'Reload');
    const title = msg.experiment?.title;
    if (title) document.title = document.getElementById('study-title').textContent = title;
    body.dataset.connected = 'true';
    keyboard.resend();
    return setBanner(null);
  })
  .on('scene', showScene)
  .on('invalid', (msg) => {
    if (msg.scene === view?.index) view.invalid?.(msg.errors || {});
  })
  .on('game', (msg) => hud.game(msg))
  .on('lobby', (msg) => party.lobby(msg))
  .on('seat', (msg) => party.seat(msg))
  .on('notice', (msg) => party.notice(msg))
  .on('frame', (msg) => renderer.applyFrame(msg))
  .on('binary', (buffer) => renderer.applyBinary(buffer))
  .on('error', (msg) => {
    console.warn('tandem: refused', msg.code, msg.message);
    view?.refused(msg);
  })
  .on('replaced', () => socket.stop('replaced'))
  // Answered at once: the server relates this page's clock to its own.
  .on('clock', (msg) => socket.send({ type: 'clock', id: msg.id, t: performance.now() }))
  .connect();

// When frames reached the screen, reported in batches.
setInterval(() => {
  const frames = renderer.takeShown();
  if (frames.length) socket.send({ type: 'shown', frames });
}, SHOWN_EVERY_MS);

// A participant who switches tabs or windows is not looking at the game.
const reportPage = (state) => socket.send({ type: 'page', state, t: performance.now() });
document.addEventListener('visibilitychange', () => reportPage(document.hidden ? 'hidden' : 'visible'));
addEventListener('focus', () => reportPage('focus'));
addEventListener('blur', () => reportPage('blur'));

function showScene(msg) {
  const { scene } = msg;
  document.getElementById('progress').textContent = msg.count ? `Step ${(msg.step ?? msg.index) + 1} of ${msg.count}` : '';
  // The same scene again (after a reconnect): keep what the participant entered.
  if (view && view.index === msg.index && view.id === scene.id) return view.resume();
  leaveScene();
  view = renderScene(main, msg, (message) => socket.send(message));
  if (scene.kind === 'game') {
    view.hudSlot.append(hud.el);
    view.stage.append(renderer.canvas);
    party.mount(view.stage, view.hudSlot);
    hud.reset(scene);
    renderer.configure(scene);
    renderer.start();
    keyboard.activate(scene.keys);
  }
  body.dataset.scene = scene.kind;
  body.dataset.sceneId = scene.id;
  // Focus on the new heading makes screen readers announce the scene.
  return view.heading.focus();
}

function leaveScene() {
  if (view?.kind === 'game') {
    party.reset();
    keyboard.activate(null);
    renderer.stop();
  }
  view?.dispose();
  view = null;
}

function showConnection(state) {
  if (state !== 'open') body.dataset.connected = 'false';
  if (state === 'connecting') setBanner('info', 'Connecting…');
  if (state === 'reconnecting') setBanner('warn', 'Connection lost. Reconnecting…');
  if (state !== 'replaced' && state !== 'unknown') return;
  // Final: nothing on the page can reach the server any more.
  if (!view) main.replaceChildren();
  leaveScene();
  main.inert = true;
  if (state === 'replaced') setBanner('error', 'This study is open in another tab. Continue there, or use this tab instead.', 'Use this tab');
  else if (document.querySelector('meta[name="tandem-needs-key"]') && !key) {
    setBanner('error', 'This assignment was started in another window or browser. Please continue there.');
  } else setBanner('error', 'Session not found, please reload.', 'Reload');
}

/** Shows the banner (hides it when `tone` is null); `reload` labels a reload button. */
function setBanner(tone, text, reload) {
  banner.hidden = !tone;
  banner.replaceChildren();
  if (!tone) return;
  banner.dataset.tone = tone;
  banner.append(text);
  if (reload) {
    const button = Object.assign(document.createElement('button'), { type: 'button', className: 'secondary', textContent: reload });
    button.addEventListener('click', () => location.reload());
    banner.append(button);
  }
}
