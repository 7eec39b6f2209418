// Canvas renderer. Frames only update state (sprites by id, or pixels) and
// mark the canvas dirty; drawing waits for the next animation frame, so a burst
// costs one draw. Pixel messages are whole frames (PNG) or deltas (runs of
// changed bytes, raw-deflated) that apply only to the frame they name, so
// every one is applied in order, and only the newest of a burst is turned into
// a picture; the server sends each socket only its newest frame, so a slow
// browser still skips frames rather than fall behind. It owns the animation-frame counter that inputs
// are stamped with, so `frame` is the clock the participant sees, and it notes
// when each frame's tick was drawn (`takeShown`), so the server learns the
// display delay.

const INK = '#111'; // for text and lines that name no colour
const MAX_SHOWN = 120; // per `shown` message, as the server allows
const MAX_SHOWN_KEPT = 240; // unsent ones kept while the socket is down

export class Renderer {
  /** `onFrame` gets each applied frame's tick, episode, step, ack, reward, return. */
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.canvas = Object.assign(document.createElement('canvas'), { id: 'game-canvas' });
    this.canvas.setAttribute('role', 'img');
    this.ctx = this.canvas.getContext('2d', { alpha: false });
    this.frame = 0; // animation frames counted while a game is on screen
    this.raf = 0;
    this.decoding = false;
    this.generation = 0; // bumped per game, so a late decode cannot leak into the next
    this.loop = this.loop.bind(this);
    // For tests and debugging: the newest applied pixel frame's tick and an
    // FNV-1a hash of its RGB bytes, to compare with what the server recorded.
    this.canvas.pixelDigest = () => this.pixels && { tick: this.pixels.tick, fnv1a: fnv1aRgb(this.pixels.rgba) };
    this.observer = new ResizeObserver(() => this.resize());
    addEventListener('resize', () => this.resize());
    this.configure({});
  }

  /** Prepares for a new game scene: its aspect and kind of frames, and nothing
   *  kept from the previous game (each game starts with a `full` frame). */
  configure(scene) {
    const { width, height } = scene.canvas || {};
    this.aspect = width > 0 && height > 0 ? width / height : 4 / 3;
    this.mode = scene.render === 'pixels' ? 'pixels' : 'sprites';
    this.canvas.setAttribute('aria-label', scene.title || 'Game');
    this.generation += 1;
    this.sprites = new Map();
    this.order = null; // sprites sorted by z then id; null when stale
    this.bitmap?.close();
    this.bitmap = null;
    this.pending = []; // pixel messages not yet applied, oldest first
    this.pixels = null; // { tick, width, height, rgba } of the newest applied pixel frame
    this.stats = { frames: 0, tick: null, ack: null, dropped: 0 };
    this.shownTick = null; // the tick of the frame on screen
    this.shown = []; // [tick, performance.now()] of frames drawn, not yet reported
    this.setData();
    this.dirty = true;
  }

  /** The frames drawn since the last call, at most MAX_SHOWN: `[tick, t]`. */
  takeShown() {
    return this.shown.splice(0, MAX_SHOWN);
  }

  /** Starts drawing; the canvas must be in the page (its parent is watched). */
  start() {
    this.observer.disconnect();
    if (this.canvas.parentElement) this.observer.observe(this.canvas.parentElement);
    this.resize();
    if (!this.raf) this.raf = requestAnimationFrame(this.loop);
  }

  stop() {
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.observer.disconnect();
  }

  /** Applies a `frame` message: `full` replaces every sprite, otherwise upsert/remove. */
  applyFrame(msg) {
    if (msg.full) this.sprites.clear();
    for (const id of msg.remove || []) this.sprites.delete(id);
    for (const sprite of msg.upsert || []) this.sprites.set(sprite.id, sprite);
    this.order = null;
    this.applied(msg);
  }

  /** Takes any binary frame message: sprites (byte 0 is 3) or pixels. */
  applyBinary(buffer) {
    const first = new Uint8Array(buffer, 0, Math.min(1, buffer.byteLength))[0];
    if (first === 3) return this.applySprites(buffer);
    this.applyPixels(buffer);
    return null;
  }

  /** Applies a binary sprite frame (see WIRE.md); returns its header. */
  applySprites(buffer) {
    let frame;
    try {
      frame = parseSpriteFrame(buffer);
    } catch (err) {
      console.warn('tandem: bad sprite frame', err);
      return null;
    }
    if (frame.full) this.sprites.clear();
    for (const id of frame.remove) this.sprites.delete(id);
    for (const { id, bits, values } of frame.patches) {
      const sprite = this.sprites.get(id);
      if (!sprite) continue; // cannot happen while the socket is in order
      const numbers = spriteNumbers(sprite);
      bits.forEach((bit, k) => { numbers[bit] = values[k]; });
      setSpriteNumbers(sprite, numbers);
    }
    for (const sprite of frame.whole) this.sprites.set(sprite.id, sprite);
    this.order = null;
    this.applied(frame.header);
    return frame.header;
  }

  /** Takes a binary pixel message (an ArrayBuffer); see WIRE.md for the layout. */
  applyPixels(buffer) {
    this.pending.push(buffer);
    if (!this.decoding) this.decode();
  }

  async decode() {
    this.decoding = true;
    const { generation } = this;
    while (this.pending.length && generation === this.generation) {
      let batch = this.pending.splice(0);
      // Whatever comes before the newest whole frame is replaced by it.
      const lastWhole = batch.findLastIndex((b) => new Uint8Array(b, 0, Math.min(1, b.byteLength))[0] === 1);
      if (lastWhole > 0) {
        this.stats.frames += lastWhole;
        batch = batch.slice(lastWhole);
      }
      let newest = null;
      for (const buffer of batch) {
        try {
          const header = await this.applyPixelMessage(buffer, generation);
          if (generation !== this.generation) break;
          if (header) {
            if (newest) this.stats.frames += 1;
            newest = header;
          } else {
            this.stats.dropped += 1;
          }
        } catch (err) {
          console.warn('tandem: bad pixel frame', err);
        }
      }
      if (!newest || generation !== this.generation) continue;
      const { rgba, width, height } = this.pixels;
      const bitmap = await createImageBitmap(new ImageData(rgba.slice(), width, height));
      if (generation === this.generation) {
        this.bitmap?.close();
        this.bitmap = bitmap;
        this.applied(newest);
      } else {
        bitmap.close(); // decoded for a game that has since been left
      }
    }
    this.decoding = false;
    if (this.pending.length) this.decode(); // arrived for the next game meanwhile
  }

  /** Applies one pixel message to `this.pixels`; returns its header, or null
   *  for a delta whose base is not the frame held (it waits for a whole one).
   *  A message that turns out malformed changes nothing. */
  async applyPixelMessage(buffer, generation) {
    const { header, payload, delta } = parsePixelFrame(buffer);
    const { width, height } = header;
    if (!delta) {
      const bitmap = await createImageBitmap(new Blob([payload], { type: 'image/png' }), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      const canvas = new OffscreenCanvas(width, height);
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      if (generation !== this.generation) return null; // decoded for a game since left
      this.pixels = { tick: header.tick, width, height, rgba: ctx.getImageData(0, 0, width, height).data };
      return header;
    }
    const held = this.pixels;
    if (!held || held.tick !== header.base || held.width !== width || held.height !== height) return null;
    const runs = await inflateRaw(payload);
    const { rgba } = held;
    const end = width * height * 3;
    let at = 0; // in RGB bytes
    let i = 0;
    const varint = () => {
      const [value, next] = readVarint(runs, i);
      i = next;
      return value;
    };
    // Checked whole first, so that a bad delta leaves the picture as it was.
    const writes = [];
    while (i < runs.length) {
      at += varint();
      const n = varint();
      if (at + n > end || i + n > runs.length) throw new Error('a delta runs past the frame');
      writes.push(at, i, n);
      at += n;
      i += n;
    }
    for (let w = 0; w < writes.length; w += 3) {
      const [start, from, n] = [writes[w], writes[w + 1], writes[w + 2]];
      for (let k = 0; k < n; k += 1) {
        const rgb = start + k;
        rgba[rgb + Math.floor(rgb / 3)] = runs[from + k];
      }
    }
    held.tick = header.tick;
    return header;
  }

  applied(meta) {
    Object.assign(this.stats, { frames: this.stats.frames + 1, tick: meta.tick, ack: meta.ack });
    // Milliseconds from navigation to the first frame, for the page-load benchmark.
    this.canvas.dataset.firstFrameMs ??= performance.now().toFixed(1);
    this.dirty = true;
    this.setData();
    this.onFrame(meta);
  }

  setData() {
    const { frames, tick, ack, dropped } = this.stats;
    Object.assign(this.canvas.dataset, { frames, tick: tick ?? '', ack: ack ?? '', dropped });
  }

  /** Fits the scene's aspect into the container's width and the viewport height
   *  below the container's top (the whole game visible without scrolling), with
   *  a backing store of CSS size × devicePixelRatio. */
  resize() {
    const { canvas } = this;
    const box = canvas.parentElement;
    if (!box) return;
    const maxHeight = Math.max(200, innerHeight - box.getBoundingClientRect().top - scrollY - 40);
    const width = Math.max(1, Math.min(box.clientWidth, maxHeight * this.aspect));
    const dpr = devicePixelRatio || 1;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${width / this.aspect}px`;
    const [w, h] = [width * dpr, (width / this.aspect) * dpr].map(Math.round);
    if (canvas.width !== w || canvas.height !== h) {
      Object.assign(canvas, { width: w, height: h });
      this.dirty = true;
    }
  }

  loop() {
    this.frame += 1;
    this.raf = requestAnimationFrame(this.loop);
    if (!this.dirty) return;
    this.dirty = false;
    this.draw();
    const { tick } = this.stats;
    if (tick != null && tick !== this.shownTick) {
      this.shownTick = tick;
      if (this.shown.length < MAX_SHOWN_KEPT) this.shown.push([tick, performance.now()]);
    }
  }

  draw() {
    const { ctx, canvas } = this;
    const W = canvas.width;
    const H = canvas.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    if (this.mode === 'pixels') {
      if (this.bitmap) {
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(this.bitmap, 0, 0, W, H);
      }
      return;
    }
    if (!this.order) {
      this.order = [...this.sprites.values()].sort((a, b) => (a.z || 0) - (b.z || 0) || a.id - b.id);
    }
    const px = devicePixelRatio || 1;
    for (const s of this.order) {
      ctx.save();
      try {
        drawSprite(ctx, s, W, H, px);
      } catch {
        // A malformed sprite is skipped; the others still draw.
      }
      ctx.restore();
    }
  }
}

/** Splits a binary pixel message into its JSON header and payload: a whole
 *  frame (byte 0 is 1, the payload a PNG) or a delta (byte 0 is 2, the
 *  payload raw-deflated runs of changed bytes against the frame of tick
 *  `header.base`; see WIRE.md). */
export function parsePixelFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 5 || (bytes[0] !== 1 && bytes[0] !== 2)) throw new Error('not a pixel frame');
  const n = new DataView(buffer).getUint32(1, true);
  if (5 + n > bytes.length) throw new Error('header runs past the end');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(5, 5 + n)));
  return { header, payload: bytes.subarray(5 + n), delta: bytes[0] === 2 };
}

/** Reads a binary sprite frame: its header (as a `frame` message's fields),
 *  the ids removed, the patches (bit indices of a sprite's numbers and their
 *  new values) and the sprites sent whole. Throws on a malformed message. */
export function parseSpriteFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let i = 0;
  const need = (n) => {
    if (i + n > bytes.length) throw new Error('the message ends early');
  };
  const varint = () => {
    const [value, next] = readVarint(bytes, i);
    i = next;
    return value;
  };
  const maskBits = () => {
    const bits = [];
    for (let shift = 0; shift < 70; shift += 7) {
      need(1);
      const b = bytes[i++];
      for (let j = 0; j < 7; j += 1) if (b & (1 << j)) bits.push(shift + j);
      if (b < 0x80) return bits;
    }
    throw new Error('a mask is too long');
  };
  const count = () => {
    const n = varint();
    if (n > bytes.length - i) throw new Error('a count past the end');
    return n;
  };
  need(1);
  if (bytes[i++] !== 3) throw new Error('not a sprite frame');
  const tick = varint();
  const episode = varint();
  const step = varint();
  const ackPlusOne = varint();
  need(17);
  const full = (bytes[i] & 1) === 1;
  const reward = view.getFloat64(i + 1, true);
  const ret = view.getFloat64(i + 9, true);
  i += 17;
  const remove = [];
  for (let n = count(); n > 0; n -= 1) remove.push(varint());
  const patches = [];
  for (let n = count(); n > 0; n -= 1) {
    const id = varint();
    const bits = maskBits();
    need(4 * bits.length);
    const values = bits.map((_, k) => view.getFloat32(i + 4 * k, true));
    i += 4 * bits.length;
    patches.push({ id, bits, values });
  }
  const length = varint();
  need(length);
  const whole = length ? JSON.parse(new TextDecoder().decode(bytes.subarray(i, i + length))) : [];
  i += length;
  if (i !== bytes.length) throw new Error('bytes after the end');
  const header = { tick, episode, step, ack: ackPlusOne ? ackPlusOne - 1 : null, full, reward, return: ret };
  return { header, full, remove, patches, whole };
}

/** Reads the LEB128 varint of binary frames at `at`: [its value, the
 *  position after it]. Throws at the end of `bytes` or past 56 bits. */
function readVarint(bytes, at) {
  let value = 0;
  for (let shift = 0; shift < 56; shift += 7) {
    if (at >= bytes.length) throw new Error('the message ends inside a number');
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
  }
  throw new Error('a number is too long');
}

/** A sprite's numbers, in the order patches count them (see WIRE.md). */
function spriteNumbers(s) {
  let numbers;
  switch (s.shape) {
    case 'rect': numbers = [s.x, s.y, s.w, s.h, s.angle || 0]; break;
    case 'circle': numbers = [s.x, s.y, s.r]; break;
    case 'line':
    case 'polygon': numbers = s.points.flat(); break;
    case 'text': numbers = [s.x, s.y, s.size]; break;
    case 'image': numbers = [s.x, s.y, s.w, s.h]; break;
    default: numbers = [];
  }
  numbers.push(s.line_width || 0);
  return numbers;
}

function setSpriteNumbers(s, n) {
  let k;
  switch (s.shape) {
    case 'rect': [s.x, s.y, s.w, s.h, s.angle] = n; k = 5; break;
    case 'circle': [s.x, s.y, s.r] = n; k = 3; break;
    case 'line':
    case 'polygon':
      s.points = s.points.map((_, p) => [n[2 * p], n[2 * p + 1]]);
      k = 2 * s.points.length;
      break;
    case 'text': [s.x, s.y, s.size] = n; k = 3; break;
    case 'image': [s.x, s.y, s.w, s.h] = n; k = 4; break;
    default: k = 0;
  }
  s.line_width = n[k];
}

/** 32-bit FNV-1a over the RGB bytes of RGBA pixels. */
function fnv1aRgb(rgba) {
  let h = 0x811c9dc5;
  for (let i = 0; i < rgba.length; i += 1) {
    if (i % 4 === 3) continue;
    h ^= rgba[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Inflates raw-deflated bytes with what the browser ships. */
async function inflateRaw(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function drawSprite(ctx, s, W, H, px) {
  // Widths are fractions of the canvas width; with none given, a hairline of one
  // CSS pixel keeps a stroked sprite visible.
  ctx.lineWidth = s.line_width > 0 ? s.line_width * W : px;
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  ctx.beginPath();
  switch (s.shape) {
    case 'rect': {
      const w = s.w * W;
      const h = s.h * H;
      ctx.translate(s.x * W + w / 2, s.y * H + h / 2);
      ctx.rotate(s.angle || 0);
      ctx.rect(-w / 2, -h / 2, w, h);
      return paint(ctx, s.fill, s.stroke);
    }
    case 'circle':
      ctx.arc(s.x * W, s.y * H, Math.max(0, s.r * W), 0, 2 * Math.PI);
      return paint(ctx, s.fill, s.stroke);
    case 'line':
      points(ctx, s.points, W, H);
      return paint(ctx, null, s.stroke || s.fill || INK);
    case 'polygon':
      points(ctx, s.points, W, H);
      ctx.closePath();
      return paint(ctx, s.fill, s.stroke);
    case 'text': {
      // Anchored at its top-left corner, like a rect; text with no colour is inked.
      const [text, x, y] = [String(s.text ?? ''), s.x * W, s.y * H];
      ctx.font = `${Math.max(1, s.size * H)}px system-ui, sans-serif`;
      ctx.textBaseline = 'top';
      ctx.fillStyle = s.fill || INK;
      if (s.fill || !s.stroke) ctx.fillText(text, x, y);
      if (s.stroke) {
        ctx.strokeStyle = s.stroke;
        ctx.strokeText(text, x, y);
      }
      return undefined;
    }
    case 'image':
      // Images are not served yet: a dashed placeholder of the right size.
      ctx.rect(s.x * W, s.y * H, s.w * W, s.h * H);
      ctx.setLineDash([4 * px, 4 * px]);
      ctx.lineWidth = px;
      return paint(ctx, '#e5e7eb', '#9ca3af');
    default:
      return undefined;
  }
}

function points(ctx, list, W, H) {
  for (const [x, y] of Array.isArray(list) ? list : []) ctx.lineTo(x * W, y * H);
}

function paint(ctx, fill, stroke) {
  if (fill) {
    ctx.fillStyle = fill;
    ctx.fill();
  }
  if (stroke) {
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }
}
