// The explorer: search as you type, a track's view with its neighbours and audio, the catalogue
// map and the status strip. Plain JavaScript talking to this node's own API; no dependencies.
"use strict";

const NEIGHBOURS = 10;
const MAP_POINTS = 3000;
const SEARCH_DELAY_MS = 120;
const STATUS_EVERY_MS = 15000;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

async function getJson(url, signal) {
  const response = await fetch(url, { signal });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

const trackHref = (id) => "#/track/" + encodeURIComponent(id);
const apiId = (id) => encodeURIComponent(id);
const artistsOf = (t) => (t.artists && t.artists.length ? t.artists.join(", ") : "unknown artist");
const titleOf = (t) => t.name || t.track_id;

function tagList(tags, most) {
  const list = el("ul", { class: "tags", "aria-label": "tags" });
  for (const [name] of (tags || []).slice(0, most)) list.append(el("li", {}, name));
  return list;
}

// ---- Search as you type ------------------------------------------------------------------

const search = {
  input: $("q"),
  list: $("results"),
  timer: 0,
  controller: null,
  active: -1,
  items: [],

  start() {
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), SEARCH_DELAY_MS);
    });
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("focus", () => this.items.length && this.show(true));
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".search")) this.show(false);
    });
  },

  async run() {
    const q = this.input.value.trim();
    if (this.controller) this.controller.abort();
    if (!q) {
      this.render([]);
      this.show(false);
      return;
    }
    this.controller = new AbortController();
    try {
      const body = await getJson(`/search?q=${encodeURIComponent(q)}&limit=8`, this.controller.signal);
      this.render(body.results, null);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.render([], error.message);
    }
    this.show(true);
  },

  render(results, problem) {
    this.items = results;
    this.active = -1;
    this.list.replaceChildren();
    results.forEach((track, i) => {
      const item = el("li", { role: "option", id: `result-${i}`, "aria-selected": "false",
        "data-track-id": track.track_id },
        el("div", {}, titleOf(track)),
        el("div", { class: "sub" }, artistsOf(track) + (track.album ? " · " + track.album : "")));
      item.addEventListener("click", () => this.open(i));
      this.list.append(item);
    });
    if (!results.length) {
      this.list.append(el("li", { class: "none", role: "option", "aria-disabled": "true" },
        problem ? "Search is unavailable: " + problem : "No track matches."));
    }
  },

  show(visible) {
    this.list.hidden = !visible;
    this.input.setAttribute("aria-expanded", String(visible));
  },

  select(i) {
    const options = this.list.querySelectorAll("li[data-track-id]");
    options.forEach((o, j) => o.setAttribute("aria-selected", String(j === i)));
    this.active = i;
    if (options[i]) {
      this.input.setAttribute("aria-activedescendant", options[i].id);
      options[i].scrollIntoView({ block: "nearest" });
    }
  },

  key(event) {
    const n = this.items.length;
    if (event.key === "ArrowDown" && n) {
      event.preventDefault();
      this.show(true);
      this.select((this.active + 1) % n);
    } else if (event.key === "ArrowUp" && n) {
      event.preventDefault();
      this.select((this.active - 1 + n) % n);
    } else if (event.key === "Enter" && n) {
      event.preventDefault();
      this.open(this.active >= 0 ? this.active : 0);
    } else if (event.key === "Escape") {
      this.show(false);
    }
  },

  open(i) {
    const track = this.items[i];
    if (!track) return;
    this.show(false);
    location.hash = trackHref(track.track_id);
  },
};

// ---- Listening ---------------------------------------------------------------------------

const player = {
  audio: $("player"),
  button: null,

  start() {
    this.audio.addEventListener("ended", () => this.mark(null));
    this.audio.addEventListener("error", () => {
      if (this.button) {
        const note = el("span", { class: "noaudio", role: "status" }, "audio failed");
        this.button.replaceWith(note);
      }
      this.button = null;
    });
  },

  toggle(button) {
    if (this.button === button && !this.audio.paused) {
      this.audio.pause();
      this.mark(null);
      return;
    }
    this.audio.src = button.dataset.src;
    this.mark(button);
    this.audio.play().catch(() => this.mark(null));
  },

  mark(button) {
    if (this.button) this.button.setAttribute("aria-pressed", "false");
    this.button = button;
    if (button) button.setAttribute("aria-pressed", "true");
  },
};

function playControl(track, state) {
  if (state && state.audio && state.audio.playable) {
    const button = el("button", { class: "play", type: "button", "aria-pressed": "false",
      "aria-label": "Play " + titleOf(track), "data-src": state.audio.url }, "▶");
    button.addEventListener("click", () => player.toggle(button));
    return button;
  }
  const why = state ? "No playable audio for this track" : "Audio availability unknown";
  return el("span", { class: "noaudio", title: why }, state ? "no audio" : "audio ?");
}

// ---- The track view ----------------------------------------------------------------------

let viewToken = 0;

async function trackState(id) {
  try {
    return await getJson(`/tracks/${apiId(id)}`);
  } catch (_) {
    return null;
  }
}

function describeState(state) {
  if (!state) return el("p", { class: "state" }, "Pipeline state unavailable right now.");
  const parts = [el("b", {}, state.status)];
  if (state.reason) parts.push(" — " + state.reason);
  parts.push(state.in_snapshot ? " · served in snapshot " : " · not in the snapshot served");
  if (state.in_snapshot) parts.push(el("code", {}, state.snapshot));
  if (state.model_versions.length) parts.push(" · vectors: " + state.model_versions.join(", "));
  return el("p", { class: "state" }, "Pipeline: ", ...parts);
}

async function showTrack(id) {
  const token = ++viewToken;
  const panel = $("track");
  panel.replaceChildren(el("p", { class: "notice" }, "Loading…"));
  const [state, recommended] = await Promise.all([
    trackState(id),
    getJson(`/recommend?track_id=${apiId(id)}&k=${NEIGHBOURS}`).catch((error) => error),
  ]);
  if (token !== viewToken) return;
  const neighbours = recommended instanceof Error ? [] : recommended.results;
  const track = state || { track_id: id, name: null, artists: [], album: null, tags: [] };
  document.title = titleOf(track) + " · spotrec";

  const head = el("div", { class: "head" },
    el("h1", {}, titleOf(track)),
    el("p", { class: "meta" }, artistsOf(track) + (track.album ? " · " + track.album : "")),
    tagList(track.tags, 8),
    describeState(state));
  if (state && state.audio && state.audio.playable) {
    head.append(el("audio", { class: "main", controls: true, preload: "none", src: state.audio.url,
      "aria-label": "Listen to " + titleOf(track) }));
  } else {
    head.append(el("p", { class: "notice" }, state
      ? "No playable audio for this track (no preview and no local file)."
      : "Audio unavailable while the pipeline's state cannot be read."));
  }
  const section = el("div", {}, el("h2", {}, "Sounds like"));
  if (recommended instanceof Error) {
    section.append(el("p", { class: recommended.status === 404 ? "notice" : "error" },
      recommended.status === 404 ? "This track is not in the snapshot served yet, so it has no neighbours."
        : "Neighbours unavailable: " + recommended.message));
  }
  const list = el("ol", { class: "neighbours" });
  section.append(list);
  panel.replaceChildren(head, section);

  const states = await Promise.all(neighbours.map((n) => trackState(n.track_id)));
  if (token !== viewToken) return;
  neighbours.forEach((n, i) => {
    const score = Math.max(0, Math.min(1, n.score));
    list.append(el("li", { "data-track-id": n.track_id },
      playControl(n, states[i]),
      el("div", { class: "who" },
        el("a", { href: trackHref(n.track_id) }, titleOf(n)),
        el("div", { class: "sub" }, artistsOf(n)),
        tagList(n.tags, 3)),
      el("div", { class: "score", title: "cosine similarity" }, n.score.toFixed(3),
        el("div", { class: "bar-score", style: `width:${(score * 100).toFixed(0)}%` }))));
  });
  map.highlight(id);
}

function showIntro() {
  viewToken++;
  document.title = "spotrec";
  $("track").replaceChildren(el("div", { class: "intro" },
    el("h1", {}, "Find music that sounds alike"),
    el("p", {}, "Search for a track by name, artist or album, or pick a point on the map. " +
      "Every track shows the tracks that sound most like it; each of those opens its own view.")));
  map.highlight(null);
}

// ---- Sounds like a clip: an upload to /recommend/audio ------------------------------------

const clip = {
  form: $("clip-form"),
  input: $("clip"),
  out: $("clip-results"),

  start() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  },

  async send() {
    const file = this.input.files && this.input.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file, file.name);
    const button = this.form.querySelector("button");
    button.disabled = true;
    this.out.replaceChildren(el("p", { class: "notice" }, "Listening to " + file.name + "…"));
    try {
      const response = await fetch(`/recommend/audio?k=${NEIGHBOURS}`, { method: "POST", body });
      let answer = null;
      try {
        answer = await response.json();
      } catch (_) {
        answer = null;
      }
      if (!response.ok) {
        const why = answer && answer.error ? answer.error : `HTTP ${response.status}`;
        this.out.replaceChildren(el("p", { class: "error" }, "Cannot use this file: " + why));
        return;
      }
      const list = el("ol", { class: "neighbours" });
      for (const n of answer.results) {
        list.append(el("li", { "data-track-id": n.track_id },
          el("div", { class: "who" },
            el("a", { href: trackHref(n.track_id) }, titleOf(n)),
            el("div", { class: "sub" }, artistsOf(n)),
            tagList(n.tags, 3)),
          el("div", { class: "score", title: "cosine similarity" }, n.score.toFixed(3))));
      }
      this.out.replaceChildren(
        el("p", { class: "meta" }, `Most like ${file.name}:`), tagList(answer.clip_tags, 5), list);
    } catch (error) {
      this.out.replaceChildren(el("p", { class: "error" }, "Upload failed: " + error.message));
    } finally {
      button.disabled = false;
    }
  },
};

// ---- The catalogue map -------------------------------------------------------------------

const map = {
  canvas: $("map"),
  tip: $("tip"),
  points: [],
  snapshot: null,
  focus: null,
  hover: null,

  start() {
    new ResizeObserver(() => this.draw()).observe(this.canvas);
    this.canvas.addEventListener("mousemove", (e) => this.move(e));
    this.canvas.addEventListener("mouseleave", () => { this.hover = null; this.tip.hidden = true; });
    this.canvas.addEventListener("click", (e) => {
      const p = this.nearest(e);
      if (p) location.hash = trackHref(p.track_id);
    });
    this.canvas.addEventListener("keydown", (e) => {
      // Enter on the map opens the current track's nearest neighbour: the map by keyboard.
      if (e.key === "Enter" && this.focus && this.focus.neighbours.length) {
        location.hash = trackHref(this.focus.neighbours[0].track_id);
      }
    });
  },

  async load(snapshot) {
    if (snapshot === this.snapshot && this.points.length) return;
    try {
      const body = await getJson(`/map?limit=${MAP_POINTS}`);
      this.points = body.points;
      this.snapshot = body.snapshot;
      $("map-note").textContent = body.total > body.points.length
        ? ` · ${body.points.length} of ${body.total} tracks shown` : "";
    } catch (error) {
      $("map-note").textContent = " · map unavailable: " + error.message;
    }
    this.draw();
  },

  async highlight(id) {
    if (!id) {
      this.focus = null;
      this.draw();
      return;
    }
    try {
      const body = await getJson(`/map?limit=0&track_id=${apiId(id)}&k=${NEIGHBOURS}`);
      this.focus = body.highlight;
    } catch (_) {
      this.focus = null;
    }
    this.draw();
  },

  // Map coordinates in [-1, 1] to canvas pixels, with a margin.
  place(x, y) {
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight, m = 12;
    return [m + (x + 1) / 2 * (w - 2 * m), m + (1 - (y + 1) / 2) * (h - 2 * m)];
  },

  draw() {
    const canvas = this.canvas, ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const color = (name) => style.getPropertyValue(name).trim();
    ctx.fillStyle = color("--other");
    // Bigger dots for a small catalogue, specks for a large one.
    const n = this.points.length;
    const r = n > 5000 ? 1 : n > 500 ? 1.8 : 3.5;
    for (const p of this.points) {
      const [px, py] = this.place(p.x, p.y);
      ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill();
    }
    let highlighted = 0;
    const focus = this.focus;
    if (focus && focus.track.x !== null) {
      const [cx, cy] = this.place(focus.track.x, focus.track.y);
      ctx.strokeStyle = color("--near");
      ctx.globalAlpha = 0.35;
      for (const n of focus.neighbours) {
        if (n.x === null) continue;
        const [nx, ny] = this.place(n.x, n.y);
        ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(nx, ny); ctx.stroke();
      }
      ctx.globalAlpha = 1;
      ctx.fillStyle = color("--near");
      for (const n of focus.neighbours) {
        if (n.x === null) continue;
        const [nx, ny] = this.place(n.x, n.y);
        ctx.beginPath(); ctx.arc(nx, ny, 5, 0, 2 * Math.PI); ctx.fill();
        highlighted++;
      }
      ctx.fillStyle = color("--accent");
      ctx.beginPath(); ctx.arc(cx, cy, 7, 0, 2 * Math.PI); ctx.fill();
      highlighted++;
    }
    if (this.hover) {
      const [hx, hy] = this.place(this.hover.x, this.hover.y);
      ctx.strokeStyle = color("--focus");
      ctx.beginPath(); ctx.arc(hx, hy, 6, 0, 2 * Math.PI); ctx.stroke();
    }
    // What the page shows, for people with screen readers and for tests.
    canvas.dataset.points = String(this.points.length);
    canvas.dataset.highlighted = String(highlighted);
  },

  candidates() {
    const extra = this.focus ? [this.focus.track, ...this.focus.neighbours] : [];
    return extra.filter((p) => p.x !== null).concat(this.points);
  },

  nearest(event) {
    const rect = this.canvas.getBoundingClientRect();
    const mx = event.clientX - rect.left, my = event.clientY - rect.top;
    let best = null, bestD = 64; // within 8 px
    for (const p of this.candidates()) {
      const [px, py] = this.place(p.x, p.y);
      const d = (px - mx) ** 2 + (py - my) ** 2;
      if (d < bestD) { best = p; bestD = d; }
    }
    return best;
  },

  move(event) {
    const p = this.nearest(event);
    this.hover = p;
    if (p) {
      const [px, py] = this.place(p.x, p.y);
      this.tip.textContent = p.name || p.track_id;
      this.tip.style.left = px + "px";
      this.tip.style.top = py + "px";
      this.tip.hidden = false;
    } else {
      this.tip.hidden = true;
    }
    this.draw();
  },
};

// ---- The status strip --------------------------------------------------------------------

function ago(seconds) {
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " days";
}

async function refreshStatus() {
  const strip = $("status");
  let body;
  try {
    body = await getJson("/status");
  } catch (error) {
    strip.replaceChildren(el("span", { class: "error" }, "Status unavailable: " + error.message));
    return;
  }
  const parts = [];
  const s = body.snapshot;
  if (s) {
    parts.push(el("span", {}, "snapshot ", el("b", { id: "status-version" }, s.version)));
    parts.push(el("span", {}, "model ", el("b", {}, s.model)));
    parts.push(el("span", {}, el("b", { id: "status-count" }, String(s.count)), " tracks"));
    parts.push(el("span", {}, "built ", el("b", {}, ago(s.age_s)), " ago"));
  } else {
    parts.push(el("span", {}, "no snapshot loaded yet"));
  }
  const pipeline = body.pipeline;
  if (pipeline.tracks) {
    const counts = Object.entries(pipeline.tracks).map(([k, v]) => `${k} ${v}`).join(", ");
    parts.push(el("span", {}, "pipeline: ", el("b", {}, counts)));
  } else {
    parts.push(el("span", {}, "pipeline counts unavailable"));
  }
  parts.push(el("span", {}, "dead letters ",
    el("b", {}, pipeline.dead_letters === null ? "?" : String(pipeline.dead_letters))));
  strip.replaceChildren(...parts);
  if (s) map.load(s.version);
}

// ---- Routing -----------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/track\/(.+)$/);
  if (match) showTrack(decodeURIComponent(match[1]));
  else showIntro();
}

search.start();
player.start();
clip.start();
map.start();
window.addEventListener("hashchange", route);
refreshStatus();
setInterval(refreshStatus, STATUS_EVERY_MS);
route();
