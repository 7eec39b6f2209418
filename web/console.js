// The researcher dashboard: draws the live overview the server sends every
// second over server-sent events (/console/live). Everything is built with DOM
// calls and textContent, never innerHTML, so nothing a participant or an
// environment wrote can run here. Charts are small inline SVGs.

import { el } from './scenes.js';

const SVG = 'http://www.w3.org/2000/svg';
const live = document.getElementById('live');
const status = document.getElementById('live-status');

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function text(x, y, s, attrs = {}) {
  const t = svg('text', { x, y, ...attrs });
  t.textContent = s;
  return t;
}

const time = (us) => new Date(us / 1000).toLocaleTimeString();
const ago = (s) => (s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

function replace(id, ...nodes) {
  const box = document.getElementById(id);
  if (box) box.replaceChildren(...nodes);
}

function table(headers, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))));
}

/** Participants per scene: a bar for who is there now, a pale one for who reached it. */
function funnel(scenes, finished) {
  const rows = [...scenes, { id: 'finished', kind: 'done', at: finished, reached: finished }];
  const max = Math.max(1, ...rows.map((r) => r.reached));
  const h = 24;
  const chart = svg('svg', { viewBox: `0 0 600 ${rows.length * h + 4}`, role: 'img', 'aria-label': 'Participants per scene' });
  rows.forEach((r, i) => {
    const y = i * h + 2;
    chart.append(
      text(0, y + 16, `${r.id} (${r.kind})`),
      svg('rect', { class: 'bar-soft', x: 200, y, width: (380 * r.reached) / max, height: h - 6 }),
      svg('rect', { class: 'bar', x: 200, y, width: (380 * r.at) / max, height: h - 6 }),
      text(205, y + 15, `${r.at} here · ${r.reached} reached`),
    );
  });
  return chart;
}

/** Cumulative completions and drop-outs per minute, as two lines. */
function timeline(completions, dropouts, now) {
  const all = [...completions, ...dropouts];
  if (!all.length) return el('p', { class: 'muted' }, 'No completions or drop-outs yet.');
  const start = Math.min(...all.map(([m]) => m));
  const end = Math.max(now, start + 60e6);
  const cumulative = (series) => { let n = 0; return series.map(([m, k]) => [m, (n += k)]); };
  const done = cumulative(completions);
  const drop = cumulative(dropouts);
  const max = Math.max(1, done.at(-1)?.[1] || 0, drop.at(-1)?.[1] || 0);
  const [W, H] = [600, 160];
  const x = (m) => 40 + ((m - start) / (end - start)) * (W - 50);
  const y = (n) => H - 20 - (n / max) * (H - 30);
  const path = (series) => `M${x(start)},${y(0)} ` + series.map(([m, n]) => `H${x(m)} V${y(n)}`).join(' ') + ` H${x(end)}`;
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Completions and drop-outs over time' },
    svg('path', { class: 'line-done', d: path(done) }),
    svg('path', { class: 'line-drop', d: path(drop) }),
    text(0, y(max) + 4, String(max)), text(0, y(0), '0'),
    text(40, H - 4, time(start)), text(W - 70, H - 4, time(end)),
    text(W - 220, 14, `completed ${done.at(-1)?.[1] || 0}`, { fill: 'currentColor' }),
    text(W - 110, 14, `dropped ${drop.at(-1)?.[1] || 0}`));
}

function lobbies(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'Nobody is waiting.');
  return table(['Scene', 'Needs', 'Waiting (longest first)'], list.map((l) => [
    l.scene_id, String(l.needed),
    l.waiting.map((w) => `participant ${w.participant} for ${ago(w.waited_s)}`).join('; '),
  ]));
}

function games(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No game is running.');
  return table(['Game', 'Scene', 'Started', 'Who controls each agent', ''], list.map((g) => [
    String(g.game_id), g.scene_id || String(g.scene), time(g.started_us),
    g.seats.map((s) => `${s.agent_name}: ${s.controller}`).join('; '),
    el('a', { href: `/console/games/${g.game_id}`, class: 'watch-link' }, 'Watch'),
  ]));
}

function gameStats(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No game played yet.');
  const n = (v, digits = 1) => (v == null ? '–' : Number(v).toFixed(digits));
  const info = (g) => Object.entries(g.info || {}).map(([k, v]) => `${k} ${n(v, 2)}`).join(' · ');
  return table(['Scene', 'Games', 'Complete episodes', 'Mean return', 'Mean steps', 'Mean play per participant (s)', 'Mean at episode end (env info)'],
    list.map((g) => [g.scene_id, String(g.games), String(g.episodes), n(g.mean_return, 2), n(g.mean_steps), n(g.mean_play_s), info(g)]));
}

function episodes(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No episode recorded yet.');
  return table(['Episode', 'Game', 'Environment', 'Started', 'Steps', 'Return', 'Outcome', ''], list.map((e) => [
    String(e.id), String(e.game), e.env, time(e.started_us), String(e.steps ?? '…'),
    e.return == null ? '' : e.return.toFixed(2), e.outcome,
    el('a', { href: `/console/episodes/${e.id}`, class: 'replay-link' }, 'Replay'),
  ]));
}

function events(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No events yet.');
  return table(['Time', 'Kind', 'Participant', 'Game', 'Detail'], list.map((e) => [
    time(e.at_us), el('span', { class: e.error ? 'error' : '' }, e.kind),
    e.participant == null ? '' : String(e.participant), e.game == null ? '' : String(e.game), e.detail,
  ]));
}

function draw(o) {
  const participants = document.getElementById('participants');
  if (participants) participants.textContent = String(o.study.participants);
  const conditions = (o.conditions || []).map((c) => `${c.id}: ${c.participants}`).join(' · ');
  replace('funnel', ...(conditions ? [el('p', { class: 'muted' }, `Participants assigned per condition: ${conditions}`)] : []),
    funnel(o.scenes, o.finished));
  replace('timeline', timeline(o.completions, o.dropouts, o.now_us));
  replace('lobbies', lobbies(o.lobbies));
  replace('games', games(o.games));
  replace('game-stats', gameStats(o.game_stats || []));
  replace('episodes', episodes(o.episodes));
  replace('events', events(o.events));
  status.dataset.state = 'live';
  status.textContent = `Live · ${o.sockets} connected · updated ${time(o.now_us)}`;
}

if (live) {
  const feed = new EventSource(`/console/live?study=${encodeURIComponent(live.dataset.study || '')}`);
  feed.addEventListener('overview', (e) => {
    try {
      draw(JSON.parse(e.data));
    } catch (err) {
      console.warn('tandem console: bad overview', err);
    }
  });
  feed.addEventListener('trouble', (e) => { status.textContent = `Trouble: ${e.data}`; });
  feed.onerror = () => {
    status.dataset.state = 'down';
    status.textContent = 'Live feed lost; reconnecting… (log in again if this lasts)';
  };
}
