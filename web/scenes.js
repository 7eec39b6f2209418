// Scene views: build each scene's DOM and turn answers into `advance`/`submit`.
// What comes next is always the server's call, so a view that has sent waits,
// button disabled, for a `scene`, `invalid` or `error`. The experiment's HTML is
// trusted; every other string is set as text, never parsed.

/** Builds the view for a `scene` message; `send(message)` is false if not sent. */
export function renderScene(container, msg, send) {
  const { scene, index } = msg;
  const section = el('section', { class: `scene scene-${scene.kind}` });
  const heading = el('h1', { tabindex: '-1', text: scene.title || '' });
  section.append(heading);
  const build = { info, game, survey, end, screening, score }[scene.kind] || unknown;
  const view = { kind: scene.kind, id: scene.id, index, heading, resume() {}, refused() {}, dispose() {} };
  Object.assign(view, build(section, scene, index, send));
  container.replaceChildren(section);
  return view;
}

function info(section, scene, index, send) {
  section.append(prose(scene.html));
  const button = el('button', { id: 'advance', type: 'button', class: 'primary', text: scene.button || 'Continue' });
  let box = null;
  if (scene.checkbox != null) {
    box = el('input', { type: 'checkbox', id: 'consent-checkbox' });
    const hint = el('p', { class: 'hint', id: 'advance-hint', text: 'Tick the box above to continue.' });
    button.setAttribute('aria-describedby', hint.id);
    box.addEventListener('change', () => {
      button.disabled = !box.checked;
      hint.hidden = box.checked;
    });
    button.disabled = true;
    section.append(el('label', { class: 'consent' }, box, el('span', { text: scene.checkbox })), hint);
  }
  const wait = waiting(section, button, () => !box || box.checked);
  button.addEventListener('click', () => {
    if (!box || box.checked) wait.send(send, { type: 'advance', scene: index, checked: !!box?.checked });
  });
  return wait.view;
}

/** A screening scene: the page reports its window and whether a real key was
 *  pressed (`isTrusted`: a script's synthetic event does not count); the
 *  server measures the round trip itself and decides. */
function screening(section, scene, index, send) {
  section.append(prose(scene.html));
  const button = el('button', { id: 'start-check', type: 'button', class: 'primary', text: 'Start the check' });
  const wait = waiting(section, button);
  let sent = false;
  const report = (key) => {
    if (sent) return;
    sent = true;
    wait.send(send, { type: 'screen', scene: index, width: innerWidth, height: innerHeight, key });
    wait.say('Checking your connection…');
  };
  const onKey = (event) => {
    if (event.isTrusted && !event.repeat) report(true);
  };
  if (scene.keyboard) {
    button.hidden = true;
    section.append(el('p', { id: 'press-a-key', class: 'hint', text: 'Press any key on your keyboard to start the check.' }));
    addEventListener('keydown', onKey);
  } else {
    button.addEventListener('click', () => report(false));
  }
  return {
    ...wait.view,
    refused(err) {
      sent = false;
      wait.view.refused(err);
    },
    dispose() {
      removeEventListener('keydown', onKey);
    },
  };
}

/** A score scene: the participant's score against everyone's so far, as a
 *  bar chart with their bar marked, then a button on. */
function score(section, scene, index, send) {
  section.append(prose(scene.html));
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  if (scene.score == null) {
    section.append(el('p', { id: 'your-score', text: 'You did not finish an episode in this game, so there is no score to show.' }));
  } else {
    section.append(el('p', { id: 'your-score', class: 'score' }, 'Your score: ', el('strong', { text: fmt(scene.score) })));
    if (scene.better_than != null) {
      const pct = Math.round(scene.better_than * 100);
      section.append(el('p', { id: 'your-rank', text: `Higher than ${pct}% of the ${scene.players - 1} other participants so far.` }));
    }
  }
  const h = scene.histogram;
  if (h && h.counts.length) {
    const SVG = 'http://www.w3.org/2000/svg';
    const [W, H] = [400, 140];
    const max = Math.max(...h.counts, 1);
    const width = (h.hi - h.lo) / h.counts.length || 1;
    const mine = scene.score == null ? -1 : Math.min(h.counts.length - 1, Math.floor((scene.score - h.lo) / width));
    const chart = document.createElementNS(SVG, 'svg');
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
    chart.setAttribute('role', 'img');
    chart.setAttribute('aria-label', 'Scores of everyone so far');
    chart.setAttribute('class', 'score-chart');
    const barW = W / h.counts.length;
    h.counts.forEach((count, i) => {
      const bar = document.createElementNS(SVG, 'rect');
      const bh = ((H - 20) * count) / max;
      Object.entries({ x: i * barW + 2, y: H - 20 - bh, width: barW - 4, height: bh,
        fill: i === mine ? '#b45309' : '#2451c7' }).forEach(([k, v]) => bar.setAttribute(k, v));
      chart.append(bar);
    });
    for (const [x, label, anchor] of [[0, fmt(h.lo), 'start'], [W, fmt(h.hi), 'end']]) {
      const t = document.createElementNS(SVG, 'text');
      Object.entries({ x, y: H - 4, 'text-anchor': anchor, 'font-size': 12 }).forEach(([k, v]) => t.setAttribute(k, v));
      t.textContent = label;
      chart.append(t);
    }
    section.append(chart);
  }
  const button = el('button', { id: 'advance', type: 'button', class: 'primary', text: scene.button || 'Continue' });
  const wait = waiting(section, button);
  button.addEventListener('click', () => wait.send(send, { type: 'advance', scene: index, checked: false }));
  return wait.view;
}

function game(section, scene) {
  const stage = el('div', { class: 'stage' });
  const hudSlot = el('div');
  section.append(el('div', { class: 'game-layout' }, el('div', {}, hudSlot, stage),
    prose(scene.instructions_html, 'prose instructions')));
  return { stage, hudSlot };
}

function survey(section, scene, index, send) {
  section.append(prose(scene.html));
  const form = el('form', { novalidate: '' });
  const questions = (scene.questions || []).map(question);
  form.append(...questions.map((q) => q.node));
  const submit = el('button', { id: 'submit', type: 'submit', class: 'primary', text: 'Submit' });
  section.append(form);
  const wait = waiting(form, submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // Unanswered questions are left out; the server decides what is required.
    const answers = Object.fromEntries(questions.map((q) => [q.id, q.value()]).filter(([, v]) => v !== undefined));
    wait.send(send, { type: 'submit', scene: index, answers });
  });
  const invalid = (errors) => {
    wait.view.resume();
    const shown = questions.filter((q) => q.error(errors[q.id]));
    // An error for a question this page does not show still deserves a word.
    const other = Object.keys(errors).filter((id) => !questions.some((q) => q.id === id));
    wait.say([shown.length ? 'Please check the answers marked above.' : '', ...other.map((id) => errors[id])].join(' ').trim());
    shown[0]?.focus();
  };
  return { ...wait.view, invalid };
}

/** One survey question: its DOM node, how to read its answer, where its error goes. */
function question(q, i) {
  const name = `q-${q.id}`;
  const errorId = `question-${i}-error`;
  const error = el('p', { class: 'field-error', id: errorId, hidden: '' });
  const required = q.required ? el('span', { class: 'required', text: ' (required)' }) : '';
  let node;
  let inputs;
  let value;
  if (q.kind === 'text') {
    const attrs = { id: `question-${i}`, name, 'aria-describedby': errorId };
    if (q.max_length) attrs.maxlength = q.max_length;
    if (q.required) attrs['aria-required'] = 'true';
    const input = q.multiline ? el('textarea', { rows: 4, ...attrs }) : el('input', { type: 'text', ...attrs });
    inputs = [input];
    node = el('div', { class: 'question' }, el('label', { class: 'prompt', for: attrs.id }, q.prompt, required), input);
    value = () => (input.value === '' ? undefined : input.value);
  } else {
    node = el('fieldset', { class: 'question', 'aria-describedby': errorId }, el('legend', { class: 'prompt' }, q.prompt, required));
    const likert = q.kind === 'likert';
    const type = q.kind === 'multiple' ? 'checkbox' : 'radio';
    const scale = Math.max(2, q.scale | 0);
    const options = likert ? Array.from({ length: scale }, (_, k) => String(k + 1)) : q.options || [];
    const list = el('div', { class: likert ? 'likert-options' : 'options' });
    // Through the CSSOM, not a style attribute: the page's CSP allows no inline styles.
    if (likert) list.style.setProperty('--scale', String(scale));
    inputs = options.map((option, k) => {
      const input = el('input', { type, name, value: option });
      const end = likert && (k === 0 ? q.low_label : k === scale - 1 ? q.high_label : null);
      list.append(el('label', likert ? {} : { class: 'option' }, input, el('span', { text: option }),
        end ? el('span', { class: 'sr-only', text: ` (${end})` }) : ''));
      return input;
    });
    if (likert) {
      node.append(el('div', { class: 'likert-labels', 'aria-hidden': 'true' },
        el('span', { text: q.low_label || '' }), el('span', { text: q.high_label || '' })));
    }
    node.append(list);
    value = () => {
      const chosen = inputs.filter((x) => x.checked).map((x) => x.value);
      if (!chosen.length) return undefined;
      return type === 'checkbox' ? chosen : likert ? Number(chosen[0]) : chosen[0];
    };
  }
  node.append(error);
  return {
    id: q.id,
    node,
    value,
    focus: () => inputs[0]?.focus(),
    /** Shows `message` (or clears it when null); true when shown. */
    error(message) {
      const on = !!message;
      error.textContent = on ? message : '';
      error.hidden = !on;
      node.classList.toggle('has-error', on);
      for (const input of inputs) input[on ? 'setAttribute' : 'removeAttribute']('aria-invalid', 'true');
      return on;
    },
  };
}

const REDIRECT_SECONDS = 5;

function end(section, scene) {
  section.append(prose(scene.html));
  if (scene.completion_code != null) {
    const code = el('code', { id: 'completion-code', text: scene.completion_code });
    const status = el('span', { class: 'copy-status', role: 'status' });
    const copy = el('button', { type: 'button', class: 'secondary', text: 'Copy' });
    copy.addEventListener('click', async () => {
      status.textContent = (await copyText(code)) ? 'Copied.' : 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
    });
    section.append(el('div', { class: 'completion' }, el('p', { text: 'Your completion code' }),
      el('div', { class: 'code-row' }, code, copy), status));
  }
  const submit = scene.mturk_submit && safeUrl(scene.mturk_submit.action);
  if (submit) return mturkSubmit(section, submit, scene);
  const url = safeUrl(scene.redirect_url);
  if (!url) return {};
  let left = REDIRECT_SECONDS;
  const count = el('span', { text: left });
  section.append(el('p', { class: 'redirect' }, 'You will be taken back automatically in ', count, ' s.'),
    el('div', { class: 'actions' }, el('a', { id: 'redirect-link', class: 'button primary', href: url, text: 'Continue' })));
  const timer = setInterval(() => {
    left -= 1;
    count.textContent = Math.max(0, left);
    if (left <= 0) {
      clearInterval(timer);
      location.assign(url);
    }
  }, 1000);
  return { dispose: () => clearInterval(timer) };
}

function unknown(section, scene) {
  section.append(el('p', { text: `This page cannot show a "${scene.kind}" step. Please reload.` }));
}

/** Appends a notice and `button` to `parent`; the button waits out each send. */
function waiting(parent, button, allowed = () => true) {
  const notice = el('p', { class: 'notice', role: 'alert' });
  parent.append(notice, el('div', { class: 'actions' }, button));
  const say = (text) => { notice.textContent = text; };
  let busy = false;
  const idle = () => {
    busy = false;
    button.disabled = !allowed();
    button.removeAttribute('aria-busy');
  };
  return {
    say,
    send(send, message) {
      if (!send(message)) return say('Not connected. Please wait a moment and try again.');
      say('');
      busy = true;
      button.disabled = true;
      return button.setAttribute('aria-busy', 'true');
    },
    view: {
      resume: idle,
      // Only an answer to this view's own message: a refused stray input is not news.
      refused(err) {
        if (!busy) return;
        idle();
        say(`That did not go through${err?.message ? `: ${err.message}` : '.'}`);
      },
    },
  };
}

async function copyText(node) {
  try {
    await navigator.clipboard.writeText(node.textContent);
    return true;
  } catch {
    // No clipboard here (plain http, no permission): select the code for Ctrl+C.
    getSelection().selectAllChildren(node);
    return false;
  }
}

/** The redirect address if it is http(s); anything else (javascript:…) is refused. */
/** Posts the assignment to MTurk, as its ExternalQuestion expects: a form with
 *  `assignmentId` (and the completion code), sent once, with a button in case
 *  the automatic send is blocked. */
function mturkSubmit(section, action, scene) {
  const form = el('form', { id: 'mturk-submit', method: 'POST', action, target: '_self' },
    el('input', { type: 'hidden', name: 'assignmentId', value: scene.mturk_submit.assignment_id }),
    el('input', { type: 'hidden', name: 'completion_code', value: scene.completion_code ?? '' }),
    el('p', { text: 'Submitting your assignment to MTurk…' }),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', text: 'Submit the HIT' })));
  section.append(form);
  setTimeout(() => form.requestSubmit(), 500);
  return {};
}

function safeUrl(raw) {
  if (!raw) return null;
  try {
    const url = new URL(raw, location.href);
    return /^https?:$/.test(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function prose(html, cls = 'prose') {
  const div = el('div', { class: cls });
  div.innerHTML = html || '';
  return div;
}

/** An element with attributes (`text` sets textContent) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== '' && c != null));
  return node;
}
