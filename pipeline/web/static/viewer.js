// The camseal browser viewer (docs/VIEWER.md). Every byte of footage is verified and
// decrypted by the WebAssembly reader core (pipeline/web) before WebCodecs sees it; a
// segment or a stream that fails a check is shown as refused and never played. The page
// talks only to its own origin: keys, segments and the live relay all come from the
// `camseal view` process that served it.

import init, { Viewer } from './pkg/camseal_web.js';

// The per-run token is in the fragment, which the browser never sends to any server.
const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
const api = (path) => `/api/${path}?token=${encodeURIComponent(token)}`;

// What the browser tests read (scripts/web_test.py): counts and the page's own timings.
const state = {
  recorded: { decoded: 0, refused: 0, verified: 0, done: false },
  live: { joinedAt: null, firstFrameAt: null, firstFrameMs: null, decoded: 0, error: null },
};
window.camsealView = state;

const $ = (id) => document.getElementById(id);

function blank(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#400';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function show(el, kind, text) {
  el.dataset.state = kind;
  el.textContent = text;
}

async function fetchOk(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
  return r;
}

// A decoder that draws each frame on `canvas`; `onFrame` is called after each draw.
function decoderFor(canvas, onFrame, onError) {
  const ctx = canvas.getContext('2d');
  return new VideoDecoder({
    output: (frame) => {
      if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
        canvas.width = frame.displayWidth;
        canvas.height = frame.displayHeight;
      }
      ctx.drawImage(frame, 0, 0);
      frame.close();
      onFrame();
    },
    error: (e) => onError(e),
  });
}

async function configure(decoder, codec) {
  if (!codec) throw new Error('no keyframe with parameter sets to start decoding');
  const config = { codec, optimizeForLatency: true };
  const support = await VideoDecoder.isConfigSupported(config);
  if (!support.supported) throw new Error(`this browser cannot decode ${codec}`);
  decoder.configure(config);
}

function chunk(frames, i) {
  return new EncodedVideoChunk({
    type: frames.keyframe(i) ? 'key' : 'delta',
    timestamp: Math.round(frames.timestamp_us(i)),
    data: frames.data(i),
  });
}

// ---- Recorded footage: verify every segment of the timeline, then play the good ones.

async function recorded(viewer) {
  const list = await (await fetchOk(api('segments'))).json();
  const timeline = $('timeline');
  const items = [];
  for (const name of list.segments) {
    const li = document.createElement('li');
    li.dataset.status = 'pending';
    li.dataset.name = name;
    li.textContent = `${name}: verifying…`;
    timeline.appendChild(li);
    items.push({ name, li, frames: null });
  }
  if (items.length === 0) {
    show($('player-state'), 'idle', 'No recorded segments.');
  }
  for (const item of items) {
    try {
      const bytes = new Uint8Array(await (await fetchOk(api(`segment/${item.name}`))).arrayBuffer());
      item.frames = viewer.open_segment(bytes);
      const n = item.frames.count();
      if (item.frames.complete()) {
        item.li.dataset.status = 'ok';
        item.li.textContent = `${item.name}: verified, ${n} frames`;
      } else {
        item.li.dataset.status = 'cutoff';
        item.li.textContent = `${item.name}: cut off before its trailer; only the ${n} signed frames play`;
      }
      state.recorded.verified += 1;
    } catch (e) {
      item.li.dataset.status = 'error';
      item.li.textContent = `${item.name}: REFUSED: ${e.message || e}`;
      state.recorded.refused += 1;
    }
    item.li.addEventListener('click', () => play([item]));
  }
  await play(items);
  state.recorded.done = true;
}

let playing = 0;

async function play(items) {
  const run = ++playing;
  const player = $('player-state');
  for (const item of items) {
    if (run !== playing) return;
    if (!item.frames) {
      // Refused footage is never played: say so where the video would be, and blank the
      // picture so that an earlier segment's last frame does not stand in for it.
      show(player, 'error', `${item.name} was refused and is not played: ${item.li.textContent}`);
      blank($('player'));
      continue;
    }
    show(player, item.li.dataset.status === 'ok' ? 'ok' : 'warning', `Playing ${item.name}`);
    try {
      await playFrames(item.frames, run);
    } catch (e) {
      show(player, 'error', `${item.name}: cannot decode: ${e.message || e}`);
      item.li.dataset.status = 'error';
      return;
    }
  }
  if (run === playing && player.dataset.state !== 'error') {
    show(player, 'ok', 'Played every verified segment.');
  }
}

async function playFrames(frames, run) {
  let failed = null;
  const decoder = decoderFor($('player'), () => { state.recorded.decoded += 1; }, (e) => { failed = e; });
  await configure(decoder, frames.codec_string());
  const n = frames.count();
  const t0 = performance.now();
  const ts0 = n > 0 ? frames.timestamp_us(0) : 0;
  for (let i = 0; i < n; i++) {
    if (run !== playing || failed) break;
    // At the footage's own pace (decode order; the decoder reorders B-frames).
    const due = t0 + (frames.timestamp_us(i) - ts0) / 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, 1000)));
    decoder.decode(chunk(frames, i));
  }
  await decoder.flush().catch((e) => { failed = failed || e; });
  decoder.close();
  if (failed) throw failed;
}

// ---- Live footage through the same-origin relay.

function live(viewer) {
  $('live-view').hidden = false;
  const el = $('live-state');
  const reader = viewer.live();
  const fail = (why) => {
    state.live.error = why;
    show(el, 'error', `Live view refused: ${why}`);
    blank($('live'));
  };
  let decoder = null;
  let configuring = null;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  state.live.joinedAt = performance.now();
  show(el, 'idle', 'Joining…');
  const ws = new WebSocket(`${scheme}://${location.host}${api('live')}`);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = async (ev) => {
    if (state.live.error) return;
    let frames;
    try {
      frames = reader.feed(new Uint8Array(ev.data));
    } catch (e) {
      ws.close();
      fail(e.message || String(e));
      return;
    }
    if (frames.count() === 0) return;
    if (!decoder) {
      if (!frames.keyframe(0)) return; // the camera starts a viewer at a keyframe
      decoder = decoderFor($('live'), () => {
        state.live.decoded += 1;
        if (state.live.firstFrameAt === null) {
          state.live.firstFrameAt = performance.now();
          state.live.firstFrameMs = state.live.firstFrameAt - state.live.joinedAt;
          el.dataset.firstFrameMs = String(Math.round(state.live.firstFrameMs));
        }
        show(el, 'ok', `Live: ${state.live.decoded} verified frames`);
      }, (e) => fail(`decoder: ${e.message || e}`));
      configuring = configure(decoder, frames.codec_string()).catch((e) => fail(e.message || String(e)));
    }
    await configuring;
    if (state.live.error) return;
    for (let i = 0; i < frames.count(); i++) decoder.decode(chunk(frames, i));
  };
  ws.onerror = () => { if (!state.live.error && state.live.decoded === 0) fail('cannot connect to the live relay'); };
  ws.onclose = () => {
    if (!state.live.error) show(el, state.live.decoded > 0 ? 'ok' : 'warning', `Live view ended after ${state.live.decoded} verified frames.`);
  };
}

async function main() {
  const status = $('status');
  try {
    await init();
    const keys = await (await fetchOk(api('keys'))).json();
    const viewer = new Viewer();
    for (const s of keys.secrets) viewer.add_secret(s);
    for (const c of keys.cameras) viewer.add_camera(c);
    show(status, 'ok', `Ready: ${keys.cameras.length} pinned camera(s). Footage is verified and decrypted in this page.`);
    if (keys.live) live(viewer);
    await recorded(viewer);
  } catch (e) {
    show(status, 'error', `Error: ${e.message || e}`);
  }
}

main();
