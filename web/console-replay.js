// The replay viewer: one recorded episode from /console/episodes/ID/data,
// played with the participant page's renderer. Play, pause, scrub, change
// speed; the table shows, at the step on screen, each agent's action, who
// chose it and why, reward, feedback and input timing. Built with textContent
// only: recorded keys and reasons are data, never markup.

import { Renderer } from './renderer.js';
import { el } from './scenes.js';

const box = document.getElementById('replay');
const status = document.getElementById('replay-status');
const scrub = document.getElementById('scrub');
const label = document.getElementById('step-label');
const playButton = document.getElementById('play');
const speed = document.getElementById('speed');
const detail = document.getElementById('step-detail');
const renderer = new Renderer(() => {});

let replay = null;
let step = 0;
let timer = 0;

const SOURCES = {
  keys: 'the participant’s keys',
  default: 'no key held: the default action',
  policy: 'the seat’s policy',
  fallback: 'a fallback policy standing in',
  correction: 'a participant’s correction',
};

function base64Buffer(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return bytes.buffer;
}

function show(t) {
  step = Math.max(0, Math.min(t, replay.steps.length));
  scrub.value = String(step);
  label.textContent = `step ${step} of ${replay.steps.length}`;
  box.dataset.step = String(step);
  const frame = replay.frames[Math.min(step, replay.frames.length - 1)];
  if (frame?.sprites) renderer.applyFrame({ full: true, upsert: frame.sprites, tick: step, episode: 0, step, ack: null });
  else if (frame?.pixels) renderer.applyPixels(base64Buffer(frame.pixels));
  const row = step > 0 ? replay.steps[step - 1] : null;
  const head = el('tr', {}, ...['Agent', 'Action', 'Chosen by', 'Why', 'Keys', 'Reward', 'Feedback', 'Input (page ms, frame, seq)', 'Server time']
    .map((h) => el('th', {}, h)));
  const rows = row ? row.agents.map((a) => el('tr', {},
    el('td', {}, replay.agents[a.agent]?.name ?? String(a.agent)),
    el('td', {}, JSON.stringify(a.action)),
    el('td', {}, a.actor),
    el('td', { class: 'source' }, SOURCES[a.source] || a.source),
    el('td', {}, a.keys ?? ''),
    el('td', {}, String(a.reward)),
    el('td', {}, a.feedback == null ? '' : String(a.feedback)),
    el('td', {}, a.client_ts == null ? '' : `${a.client_ts.toFixed(1)}, ${a.client_frame}, ${a.input_seq}`),
    el('td', {}, new Date(row.server_us / 1000).toISOString().slice(11, 23)),
  )) : [el('tr', {}, el('td', { colspan: '9', class: 'muted' }, 'After reset: no action yet.'))];
  detail.replaceChildren(head, ...rows);
}

function pause() {
  clearInterval(timer);
  timer = 0;
  playButton.textContent = 'Play';
}

function play() {
  if (step >= replay.steps.length) show(0);
  const fps = replay.fps * Number(speed.value);
  clearInterval(timer);
  timer = setInterval(() => {
    if (step >= replay.steps.length) pause();
    else show(step + 1);
  }, 1000 / fps);
  playButton.textContent = 'Pause';
}

async function load() {
  const response = await fetch(`/console/episodes/${box.dataset.episode}/data`, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  replay = await response.json();
  replay.fps = replay.scene.fps || 30;
  renderer.configure(replay.scene);
  document.getElementById('stage').append(renderer.canvas);
  renderer.start();
  scrub.max = String(replay.steps.length);
  const e = replay.episode;
  const note = replay.frames_note ? ` · ${replay.frames_note}` : '';
  status.textContent = `${e.outcome} · ${replay.steps.length} steps · return ${e.return ?? '…'} · frames from ${replay.frame_source}${note}`;
  box.dataset.ready = 'true';
  show(0);
}

playButton.addEventListener('click', () => (timer ? pause() : play()));
speed.addEventListener('change', () => { if (timer) play(); });
scrub.addEventListener('input', () => { pause(); show(Number(scrub.value)); });
load().catch((err) => { status.textContent = `Could not load the replay: ${err.message}`; });
