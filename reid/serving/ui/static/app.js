// The web page: compare, group and the gallery, over the service's own routes.
//
// Everything the service or a user supplies (labels, metadata, sources, file names, error
// messages) is put on the page with textContent or drawn with the canvas's fillText: never
// parsed as HTML. The API key lives in this tab's sessionStorage only and travels in the
// X-API-Key header, never in a URL.
"use strict";

const KEY_STORE = "reid-api-key";
const PAGE_SIZE = 10;
const CROP_HEIGHT = 96; // pixels: a view's crop as the gallery page shows it
const RE_ASK_MS = 250; // a threshold held still this long is asked again
// Tableau's colours less its grey (grey means "no match") and three more: distinct on photos;
// numbers tell identities apart beyond twelve.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#17becf", "#bcbd22", "#005f73", "#393b79", "#637939"];
const UNMATCHED = "#8a939b";
const NOT_MATCHABLE = "#e07b00";
const REASONS = {
  too_small: "too small (shorter than the service's minimum person height)",
  cut_off: "cut off (too wide for a whole person)",
  over_limit: "over the limit (beyond the most confident persons the service matches)",
};

const $ = (id) => document.getElementById(id);

/** An element with properties (text, class, dataset, attributes) and children (nodes or text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function colour(index) {
  return PALETTE[index % PALETTE.length];
}

function swatch(fill) {
  const mark = el("span", { class: "swatch", "aria-hidden": "true" });
  mark.style.setProperty("background-color", fill);
  mark.style.setProperty("border-color", fill);
  return mark;
}

function reasonOf(person) {
  return REASONS[person.not_matchable_reason] || person.not_matchable_reason || "not matchable";
}

function shortReason(person) {
  return (person.not_matchable_reason || "not matchable").replace("_", " ");
}

function shortened(text, most = 24) {
  return text.length > most ? `${text.slice(0, most - 1)}…` : text;
}

function formatTime(text) {
  const when = new Date(text);
  return Number.isNaN(when.getTime()) ? String(text) : `${when.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

// ---------------------------------------------------------------- requests and the API key

class ServiceError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

class Aborted extends Error {}

function storedKey() {
  return sessionStorage.getItem(KEY_STORE);
}

let keyPrompt = null; // the open prompt: requests refused meanwhile wait for the same answer

/** Ask for the API key (a modal dialog); the key given, or null when none was. */
function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  $("key-message").textContent = message;
  $("key-input").value = "";
  dialog.returnValue = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const key = $("key-input").value.trim();
      $("key-input").value = "";
      keyPrompt = null;
      if (dialog.returnValue === "save" && key) {
        sessionStorage.setItem(KEY_STORE, key);
        resolve(key);
        return;
      }
      if (dialog.returnValue === "forget") sessionStorage.removeItem(KEY_STORE);
      resolve(null);
    }, { once: true });
  });
  dialog.showModal();
  $("key-input").focus();
  return keyPrompt;
}

/** One HTTP exchange: {status, data} with the JSON body (null if none). */
function exchange({ method, url, form, json, headers = {}, busy, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    const key = storedKey();
    if (key) xhr.setRequestHeader("X-API-Key", key);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    let body = form || null;
    if (json !== undefined) {
      xhr.setRequestHeader("Content-Type", "application/json");
      body = JSON.stringify(json);
    }
    if (busy && form) {
      xhr.upload.addEventListener("progress", (event) => busy.uploaded(event.loaded, event.total));
      xhr.upload.addEventListener("load", () => busy.waiting());
    }
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      resolve({ status: xhr.status, data });
    });
    xhr.addEventListener("error", () => reject(new ServiceError(0, "The service could not be reached.", null)));
    xhr.addEventListener("abort", () => reject(new Aborted("replaced by a newer request")));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** A request's JSON answer; a ServiceError for a refusal. A 401 asks for the key and tries again. */
async function request(options) {
  for (;;) {
    const hadKey = Boolean(storedKey());
    const { status, data } = await exchange(options);
    if (status === 401) {
      const message = hadKey ? "The service refused this API key. Give the right one." : "The service needs an API key.";
      if (await askForKey(message)) continue;
      throw new ServiceError(401, "No API key given: the service needs one.", null);
    }
    if (status >= 200 && status < 300) return data;
    const text = data && typeof data.error === "string" ? data.error : `The service answered ${status}.`;
    throw new ServiceError(status, text, data && typeof data.field === "string" ? data.field : null);
  }
}

/** 32 random hexadecimal digits (crypto.randomUUID needs a secure context; this does not). */
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- busy state and errors

/** A form's busy state: its buttons, its upload progress, its status line. */
class Busy {
  constructor(prefix) {
    this.form = $(`${prefix}-form`);
    this.progress = $(`${prefix}-progress`);
    this.status = $(`${prefix}-status`);
    this.timer = null;
  }

  start(text) {
    this.form.setAttribute("aria-busy", "true");
    for (const button of this.form.querySelectorAll("button")) button.disabled = true;
    this.progress.hidden = false;
    this.progress.max = 1;
    this.progress.value = 0;
    this.status.textContent = text;
  }

  uploaded(loaded, total) {
    if (!total) return;
    this.progress.max = total;
    this.progress.value = loaded;
    this.progress.dataset.uploaded = String(loaded);
    this.status.textContent = `Uploading: ${Math.round((100 * loaded) / total)}% of ${megabytes(total)} MB`;
  }

  waiting() {
    this.progress.removeAttribute("value"); // indeterminate: the service is working
    const started = Date.now();
    this.status.textContent = "Waiting for the service…";
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.status.textContent = `Waiting for the service… ${Math.round((Date.now() - started) / 1000)} s`;
    }, 1000);
  }

  done(text) {
    clearInterval(this.timer);
    this.form.removeAttribute("aria-busy");
    for (const button of this.form.querySelectorAll("button")) button.disabled = false;
    this.progress.hidden = true;
    this.status.textContent = text;
  }
}

function clearErrors(prefix) {
  const form = $(`${prefix}-form`);
  for (const node of document.querySelectorAll(`[id^="${prefix}-"].field-error, #${prefix}-form-error`)) {
    node.hidden = true;
    node.textContent = "";
  }
  if (form) for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Show an error in words next to the field at fault (``images[2]`` is the field ``images``),
 * else under the form. ``files`` name the files of a repeated field. */
function showError(prefix, error, files = []) {
  if (error instanceof Aborted) return;
  let text = error instanceof ServiceError ? error.message : `Something went wrong: ${error.message}`;
  const field = error.field || "";
  const place = /^(.*)\[(\d+)\]$/.exec(field);
  const name = place ? place[1] : field;
  if (place && files[Number(place[2])]) text = `File ${Number(place[2]) + 1} (${files[Number(place[2])].name}): ${text}`;
  const target = name && $(`${prefix}-${name}-error`);
  const shown = target || $(`${prefix}-form-error`);
  shown.textContent = text;
  shown.hidden = false;
  if (target) {
    const input = document.querySelector(`[aria-describedby~="${target.id}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }
}

function fieldError(field, message) {
  return new ServiceError(0, message, field);
}

// ---------------------------------------------------------------- drawing

/** The image, decoded here for drawing (EXIF orientation applied, as the service applies it);
 * null when this browser cannot decode it. */
async function bitmapOf(file) {
  try {
    return await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
}

/** A canvas sized to its CSS width and the given height in CSS pixels; its 2D context in CSS pixels. */
function sizedCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(height * ratio));
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.placedTags = []; // where tags are, so that the next one finds a free place
  return context;
}

/** Draw an image (or a grey stand-in) into a rectangle: {x, y, scale} maps its pixels there. */
function drawImage(context, bitmap, size, x, y, scale) {
  if (bitmap) context.drawImage(bitmap, x, y, size.width * scale, size.height * scale);
  else {
    context.fillStyle = "#555";
    context.fillRect(x, y, size.width * scale, size.height * scale);
  }
  return { x, y, scale };
}

function boxRect(place, bbox) {
  const [x1, y1, x2, y2] = bbox;
  return {
    x: place.x + x1 * place.scale,
    y: place.y + y1 * place.scale,
    w: (x2 - x1) * place.scale,
    h: (y2 - y1) * place.scale,
  };
}

/** A box with a tag of text at its top left; dashed for persons that are not matchable. */
function drawBox(context, rect, stroke, tag, { dashed = false, width = 3 } = {}) {
  context.save();
  context.lineWidth = width;
  context.strokeStyle = stroke;
  context.setLineDash(dashed ? [8, 5] : []);
  context.strokeRect(rect.x, rect.y, rect.w, rect.h);
  context.restore();
  if (tag) drawTag(context, rect.x, rect.y, tag, stroke);
}

/** Text in a filled pill just above (x, y), kept inside the canvas; moved up or down where it
 * would cover another tag (neighbours' boxes start side by side). */
function drawTag(context, x, y, text, fill) {
  const height = 19;
  context.save();
  context.font = "600 13px system-ui, sans-serif";
  const width = context.measureText(text).width + 10;
  const maxX = context.canvas.width / (window.devicePixelRatio || 1) - width;
  const left = Math.max(0, Math.min(x, maxX));
  const placed = context.placedTags || [];
  const free = (top) => !placed.some((r) => left < r.x + r.w && r.x < left + width && top < r.y + height && r.y < top + height);
  const tops = [y - height, y - 2 * height, y - 3 * height, y + 1, y + height + 1].map((top) => Math.max(0, top));
  const top = tops.find(free) ?? tops[0];
  placed.push({ x: left, y: top, w: width });
  context.fillStyle = fill;
  context.fillRect(left, top, width, height);
  context.fillStyle = "#fff";
  context.textBaseline = "middle";
  context.fillText(text, left + 5, top + 10);
  context.restore();
}

// ---------------------------------------------------------------- views (tabs)

const VIEWS = ["compare", "group", "gallery"];
let galleryShown = false;

function showView() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : "compare";
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    const tab = $(`tab-${name}`);
    if (name === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "gallery" && !galleryShown) {
    galleryShown = true;
    browse(0);
  }
  redraw();
}

function redraw() {
  if (!$("view-compare").hidden) compareView.draw();
  if (!$("view-group").hidden) groupView.draw();
  if (!$("view-gallery").hidden) searchView.draw();
}

/** Drop zones: a dropped file goes into the zone's file input, as if chosen there. */
function enableDrops() {
  for (const zone of document.querySelectorAll(".drop")) {
    const input = $(zone.dataset.input);
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const files = Array.from(event.dataTransfer.files);
      if (!files.length) return;
      const chosen = new DataTransfer();
      for (const file of input.multiple ? files : files.slice(0, 1)) chosen.items.add(file);
      input.files = chosen.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
}

/** A threshold slider that asks again once held still; null until the user moves it. */
class Threshold {
  constructor(prefix, onChange) {
    this.slider = $(`${prefix}-threshold`);
    this.output = $(`${prefix}-threshold-value`);
    this.touched = false;
    this.timer = null;
    this.slider.addEventListener("input", () => {
      this.touched = true;
      this.output.textContent = Number(this.slider.value).toFixed(2);
      clearTimeout(this.timer);
      this.timer = setTimeout(onChange, RE_ASK_MS);
    });
  }

  value() {
    return this.touched ? this.slider.value : null;
  }

  /** Show the threshold the service used. */
  used(value) {
    this.slider.disabled = false;
    if (!this.touched) {
      this.slider.value = String(value);
      this.output.textContent = `${Number(value).toFixed(2)} (the service's default)`;
    } else this.output.textContent = Number(value).toFixed(2);
  }
}

// ---------------------------------------------------------------- compare

const compareView = {
  answer: null,
  bitmaps: [null, null],
  controller: null,
  threshold: null,

  init() {
    this.busy = new Busy("compare");
    this.threshold = new Threshold("compare", () => this.ask());
    $("compare-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
  },

  files() {
    return [$("compare-image1").files[0], $("compare-image2").files[0]];
  },

  async ask() {
    clearErrors("compare");
    const files = this.files();
    const missing = ["image1", "image2"].find((_, i) => !files[i]);
    if (missing) {
      showError("compare", fieldError(missing, `Choose the ${missing === "image1" ? "first" : "second"} image.`));
      return;
    }
    if (this.controller) this.controller.abort();
    const controller = (this.controller = new AbortController());
    const form = new FormData();
    form.append("image1", files[0]);
    form.append("image2", files[1]);
    const threshold = this.threshold.value();
    if (threshold !== null) form.append("threshold", threshold);
    this.busy.start("Sending the images…");
    try {
      const answer = await request({ method: "POST", url: "../compare", form, busy: this.busy, signal: controller.signal });
      this.bitmaps = await Promise.all(files.map(bitmapOf));
      this.answer = answer;
      this.threshold.used(answer.threshold);
      $("compare-result").hidden = false;
      this.draw();
      this.summarise();
      const n = answer.matches.length;
      this.busy.done(`${n} ${n === 1 ? "match" : "matches"} at threshold ${answer.threshold.toFixed(2)}.`);
    } catch (error) {
      if (error instanceof Aborted) return;
      this.busy.done("");
      showError("compare", error);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  },

  draw() {
    const answer = this.answer;
    const canvas = $("compare-canvas");
    if (!answer || !canvas.clientWidth) return;
    const width = canvas.clientWidth;
    const sizes = [answer.image1_size, answer.image2_size];
    const gap = 12;
    const stacked = width < 640; // phone width: one above the other
    const scales = sizes.map((size) => (stacked ? width : (width - gap) / 2) / size.width);
    const heights = sizes.map((size, i) => size.height * scales[i]);
    const height = stacked ? heights[0] + gap + heights[1] : Math.max(...heights);
    const context = sizedCanvas(canvas, width, height);
    const places = [
      drawImage(context, this.bitmaps[0], sizes[0], 0, 0, scales[0]),
      stacked
        ? drawImage(context, this.bitmaps[1], sizes[1], 0, heights[0] + gap, scales[1])
        : drawImage(context, this.bitmaps[1], sizes[1], (width + gap) / 2, 0, scales[1]),
    ];
    const persons = [answer.image1_persons, answer.image2_persons];
    const pairOf = [new Map(), new Map()];
    answer.matches.forEach((match, i) => {
      pairOf[0].set(match.image1_index, i);
      pairOf[1].set(match.image2_index, i);
    });
    persons.forEach((list, k) => {
      for (const person of list) {
        const rect = boxRect(places[k], person.bbox);
        if (pairOf[k].has(person.index)) drawBox(context, rect, colour(pairOf[k].get(person.index)), `#${person.index}`);
        else if (person.matchable) drawBox(context, rect, UNMATCHED, `#${person.index} no match`, { width: 2 });
        else drawBox(context, rect, NOT_MATCHABLE, `#${person.index} ${shortReason(person)}`, { dashed: true, width: 2 });
      }
    });
    answer.matches.forEach((match, i) => {
      const a = boxRect(places[0], match.bbox_image1);
      const b = boxRect(places[1], match.bbox_image2);
      const from = { x: a.x + a.w / 2, y: a.y + a.h / 3 };
      const to = { x: b.x + b.w / 2, y: b.y + b.h / 3 };
      context.save();
      context.strokeStyle = colour(i);
      context.lineWidth = 3;
      context.beginPath();
      context.moveTo(from.x, from.y);
      context.lineTo(to.x, to.y);
      context.stroke();
      context.restore();
      drawTag(context, (from.x + to.x) / 2 - 18, (from.y + to.y) / 2 + 9, match.similarity.toFixed(2), colour(i));
    });
    const n = answer.matches.length;
    canvas.setAttribute("aria-label", `Both images: ${n} matched ${n === 1 ? "pair" : "pairs"}, listed below`);
  },

  summarise() {
    const answer = this.answer;
    const summary = $("compare-summary");
    const names = ["first image", "second image"];
    const persons = [answer.image1_persons, answer.image2_persons];
    const matches = el("ol", { id: "compare-matches" });
    answer.matches.forEach((match, i) => {
      matches.append(el("li", { dataset: { kind: "match" } }, swatch(colour(i)),
        `Person ${match.image1_index} of the first image and person ${match.image2_index} of the second: similarity `,
        el("strong", { class: "similarity", text: match.similarity.toFixed(3) })));
    });
    const unmatched = el("ul", { id: "compare-unmatched" });
    const notMatchable = el("ul", { id: "compare-not-matchable" });
    const matched = [new Set(answer.matches.map((m) => m.image1_index)), new Set(answer.matches.map((m) => m.image2_index))];
    persons.forEach((list, k) => {
      for (const person of list) {
        if (!person.matchable) {
          notMatchable.append(el("li", { dataset: { kind: "not-matchable" } },
            `Person ${person.index} of the ${names[k]}: ${reasonOf(person)}`));
        } else if (!matched[k].has(person.index)) {
          unmatched.append(el("li", { dataset: { kind: "unmatched" } }, `Person ${person.index} of the ${names[k]}`));
        }
      }
    });
    const counts = `${answer.image1_person_count} persons in the first image, ${answer.image2_person_count} in the second; threshold ${answer.threshold.toFixed(2)}.`;
    summary.replaceChildren(
      el("p", { text: counts }),
      el("h3", { text: `Matched: ${answer.matches.length}` }), matches,
      el("h3", { text: `No match: ${unmatched.children.length}` }), unmatched,
      el("h3", { text: `Not matchable: ${notMatchable.children.length}` }), notMatchable,
    );
  },
};

// ---------------------------------------------------------------- group

const groupView = {
  answer: null,
  bitmaps: [],
  files: [],
  controller: null,

  init() {
    this.busy = new Busy("group");
    this.threshold = new Threshold("group", () => this.ask());
    $("group-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
  },

  async ask() {
    clearErrors("group");
    const files = Array.from($("group-images").files);
    if (files.length < 2) {
      showError("group", fieldError("images", "Choose 2 to 16 images."));
      return;
    }
    if (this.controller) this.controller.abort();
    const controller = (this.controller = new AbortController());
    const form = new FormData();
    for (const file of files) form.append("images", file);
    const threshold = this.threshold.value();
    if (threshold !== null) form.append("threshold", threshold);
    this.busy.start(`Sending ${files.length} images…`);
    try {
      const answer = await request({ method: "POST", url: "../group", form, busy: this.busy, signal: controller.signal });
      this.bitmaps = await Promise.all(files.map(bitmapOf));
      this.files = files;
      this.answer = answer;
      this.threshold.used(answer.threshold);
      $("group-result").hidden = false;
      this.build();
      this.draw();
      const n = answer.identities.length;
      this.busy.done(`${n} ${n === 1 ? "identity" : "identities"} in ${answer.image_count} images.`);
    } catch (error) {
      if (error instanceof Aborted) return;
      this.busy.done("");
      showError("group", error, files);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  },

  /** One figure per image, and the list of identities with their members. */
  build() {
    const answer = this.answer;
    const pictures = answer.images.map((image, k) => {
      const canvas = el("canvas", { class: "picture", role: "img", dataset: { image: String(k) } });
      const ids = new Set(image.persons.filter((p) => p.identity !== null).map((p) => p.identity));
      canvas.setAttribute("aria-label", `Image ${k + 1}: ${image.person_count} persons, identities ${[...ids].join(", ") || "none"}`);
      return el("figure", {}, canvas,
        el("figcaption", { text: `Image ${k + 1}: ${this.files[k].name}, ${image.person_count} persons` }));
    });
    $("group-pictures").replaceChildren(...pictures);
    const identities = answer.identities.map((identity) => {
      const members = identity.members.map((m) => `image ${m.image_index + 1} person ${m.person_index}`).join(", ");
      const seen = identity.members.length;
      return el("li", { dataset: { identity: String(identity.identity) } }, swatch(colour(identity.identity)),
        el("span", { class: "identity-number", text: `Identity ${identity.identity}` }),
        `: seen in ${seen} ${seen === 1 ? "image" : "images"}: ${members}`);
    });
    $("group-identities").replaceChildren(...identities);
    const notMatchable = [];
    answer.images.forEach((image, k) => {
      for (const person of image.persons) {
        if (!person.matchable) notMatchable.push(el("li", { text: `Image ${k + 1} person ${person.index}: ${reasonOf(person)}` }));
      }
    });
    const persons = answer.images.reduce((total, image) => total + image.person_count, 0);
    $("group-summary").replaceChildren(
      el("p", { text: `${answer.image_count} images, ${persons} persons, ${answer.identities.length} identities; threshold ${answer.threshold.toFixed(2)}.` }),
      notMatchable.length ? el("h3", { text: `Not matchable: ${notMatchable.length}` }) : null,
      notMatchable.length ? el("ul", {}, ...notMatchable) : null,
    );
  },

  draw() {
    const answer = this.answer;
    if (!answer) return;
    for (const canvas of $("group-pictures").querySelectorAll("canvas")) {
      const k = Number(canvas.dataset.image);
      const image = answer.images[k];
      const width = canvas.clientWidth;
      if (!width) continue;
      const scale = width / image.size.width;
      const context = sizedCanvas(canvas, width, image.size.height * scale);
      const place = drawImage(context, this.bitmaps[k], image.size, 0, 0, scale);
      for (const person of image.persons) {
        const rect = boxRect(place, person.bbox);
        if (person.identity === null) drawBox(context, rect, NOT_MATCHABLE, shortReason(person), { dashed: true, width: 2 });
        else drawBox(context, rect, colour(person.identity), String(person.identity));
      }
    }
  },
};

// ---------------------------------------------------------------- gallery: search and enrol

const searchView = {
  file: null,
  answer: null,
  bitmap: null,
  place: null,
  selected: null, // {bbox, index}: index of the person picked, null for a drawn box
  drag: null,

  init() {
    this.busy = new Busy("search");
    this.enrolBusy = new Busy("enrol");
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    $("enrol-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.enrol();
    });
    $("enrol-cancel").addEventListener("click", () => this.select(null));
    $("enrol-target").addEventListener("change", () => {
      const asView = Boolean($("enrol-target").value);
      for (const field of $("enrol-form").querySelectorAll(".person-only")) field.hidden = asView;
      $("enrol-submit").textContent = asView ? "Add this view" : "Enrol";
    });
    const canvas = $("search-canvas");
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    canvas.addEventListener("pointercancel", () => {
      this.drag = null;
      this.draw();
    });
  },

  async ask() {
    clearErrors("search");
    const file = $("search-image").files[0];
    if (!file) {
      showError("search", fieldError("image", "Choose an image."));
      return;
    }
    const form = new FormData();
    form.append("image", file);
    const topK = $("search-top-k").value.trim();
    if (topK) form.append("top_k", topK);
    const threshold = $("search-threshold").value.trim();
    if (threshold) form.append("threshold", threshold);
    this.busy.start("Sending the image…");
    try {
      const answer = await request({ method: "POST", url: "../gallery/search", form, busy: this.busy });
      this.bitmap = await bitmapOf(file);
      this.file = file;
      this.answer = answer;
      this.selected = null;
      $("enrol-form").hidden = true;
      $("search-result").hidden = false;
      this.list();
      this.draw();
      const found = answer.persons.filter((p) => p.matches.length).length;
      this.busy.done(`${answer.persons.length} persons found, ${found} of them in the gallery of ${answer.gallery_size}.`);
    } catch (error) {
      this.busy.done("");
      showError("search", error);
    }
  },

  /** Each person found, with its best gallery persons and a button to enrol it. */
  list() {
    const items = this.answer.persons.map((person) => {
      const matches = person.matches.map((match) => el("li", { dataset: { personId: match.person_id } },
        labelNode(match.label), ` similarity ${match.similarity.toFixed(3)}`,
        match.source ? ` (view from ${match.source})` : "",
        " ", el("span", { class: "person-id", text: match.person_id.slice(0, 8) })));
      const heading = person.matchable
        ? (person.matches.length ? "best in the gallery:" : "nobody in the gallery at the threshold")
        : reasonOf(person);
      const button = el("button", { type: "button", class: "small quiet", "aria-label": `Enrol person ${person.index}` },
        `Enrol person ${person.index}`);
      button.disabled = !person.matchable;
      button.addEventListener("click", () => this.select({ bbox: person.bbox, index: person.index }));
      return el("li", { dataset: { index: String(person.index), bbox: person.bbox.join(",") } },
        el("strong", { text: `Person ${person.index}` }), `: ${heading} `, button,
        matches.length ? el("ol", { class: "matches" }, ...matches) : null);
    });
    $("search-persons").replaceChildren(...items);
  },

  draw() {
    const answer = this.answer;
    const canvas = $("search-canvas");
    if (!answer || !canvas.clientWidth) return;
    const size = { width: this.bitmap ? this.bitmap.width : 1, height: this.bitmap ? this.bitmap.height : 1 };
    const width = canvas.clientWidth;
    const scale = width / size.width;
    const context = sizedCanvas(canvas, width, size.height * scale);
    this.place = drawImage(context, this.bitmap, size, 0, 0, scale);
    for (const person of answer.persons) {
      const rect = boxRect(this.place, person.bbox);
      const chosen = this.selected && this.selected.index === person.index;
      if (!person.matchable) {
        drawBox(context, rect, NOT_MATCHABLE, `#${person.index} ${shortReason(person)}`, { dashed: true, width: 2 });
      } else if (person.matches.length) {
        // A colour per gallery person: persons found to be the same one share it.
        const best = person.matches[0];
        const tag = `#${person.index} ${shortened(best.label ?? "no label")} ${best.similarity.toFixed(2)}`;
        drawBox(context, rect, colour(parseInt(best.person_id.slice(0, 6), 16)), tag, { width: chosen ? 5 : 3 });
      } else drawBox(context, rect, UNMATCHED, `#${person.index} not in the gallery`, { width: chosen ? 5 : 2 });
    }
    const box = this.drag ? this.drag.box : this.selected && this.selected.index === null ? this.selected.bbox : null;
    if (box) drawBox(context, boxRect(this.place, box), "#ffb000", this.drag ? "" : "drawn box", { width: 3, dashed: Boolean(this.drag) });
  },

  /** The image pixel under a pointer event, inside the image. */
  pixel(event) {
    const bounds = $("search-canvas").getBoundingClientRect();
    const x = (event.clientX - bounds.left - this.place.x) / this.place.scale;
    const y = (event.clientY - bounds.top - this.place.y) / this.place.scale;
    return [Math.min(Math.max(x, 0), this.bitmap.width), Math.min(Math.max(y, 0), this.bitmap.height)];
  },

  pointerDown(event) {
    if (!this.answer || !this.bitmap) return;
    event.preventDefault();
    $("search-canvas").setPointerCapture(event.pointerId);
    const start = this.pixel(event);
    this.drag = { start, box: null, moved: false };
  },

  pointerMove(event) {
    if (!this.drag) return;
    const [x, y] = this.pixel(event);
    const [x0, y0] = this.drag.start;
    if (Math.abs(x - x0) * this.place.scale + Math.abs(y - y0) * this.place.scale < 6) return;
    this.drag.moved = true;
    this.drag.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)].map(Math.round);
    this.draw();
  },

  pointerUp(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.moved && drag.box) {
      this.select({ bbox: drag.box, index: null });
      return;
    }
    // A click: the smallest person box under it.
    const [x, y] = this.pixel(event);
    const under = this.answer.persons
      .filter((p) => p.bbox[0] <= x && x <= p.bbox[2] && p.bbox[1] <= y && y <= p.bbox[3])
      .sort((a, b) => (a.bbox[2] - a.bbox[0]) * (a.bbox[3] - a.bbox[1]) - (b.bbox[2] - b.bbox[0]) * (b.bbox[3] - b.bbox[1]));
    this.select(under.length ? { bbox: under[0].bbox, index: under[0].index } : null);
  },

  /** Pick a person (or a drawn box) to enrol: the enrol form opens with its box. */
  select(choice) {
    this.selected = choice;
    for (const item of $("search-persons").children) {
      item.classList.toggle("selected-person", Boolean(choice) && Number(item.dataset.index) === choice.index);
    }
    this.draw();
    clearErrors("enrol");
    $("enrol-form").hidden = !choice;
    if (!choice) return;
    $("enrol-bbox").value = choice.bbox.join(",");
    $("enrol-status").textContent = choice.index === null ? "A drawn box." : `Person ${choice.index}.`;
    const target = $("enrol-target").value ? $("enrol-target") : $("enrol-label");
    target.focus();
  },

  async enrol() {
    clearErrors("enrol");
    if (!this.file) return;
    const target = $("enrol-target").value;
    const form = new FormData();
    form.append("image", this.file);
    const bbox = $("enrol-bbox").value.trim();
    if (bbox) form.append("bbox", bbox);
    // Label and source go as JSON strings: the service reads those as their content, so a
    // label such as null or "x" stays the text typed.
    if (!target) {
      const label = $("enrol-label").value;
      if (label.trim()) form.append("label", JSON.stringify(label));
      const metadata = $("enrol-metadata").value.trim();
      if (metadata) form.append("metadata", metadata);
    }
    const source = $("enrol-source").value.trim();
    if (source) form.append("source", JSON.stringify(source));
    const url = target ? `../gallery/persons/${encodeURIComponent(target)}/views` : "../gallery/persons";
    this.enrolBusy.start("Sending…");
    try {
      // One key per enrolment: a retry after the key prompt stores the person once.
      const entry = await request({ method: "POST", url, form, busy: this.enrolBusy, headers: { "Idempotency-Key": randomKey() } });
      const name = entry.label ?? entry.person_id.slice(0, 8);
      this.enrolBusy.done(target ? `Added a view of ${name}.` : `Enrolled ${name}.`);
      $("enrol-label").value = "";
      $("enrol-metadata").value = "";
      $("enrol-target").value = "";
      browse(gallery.offset);
    } catch (error) {
      this.enrolBusy.done("");
      showError("enrol", error);
    }
  },
};

/** A label as text, or a marked "no label". */
function labelNode(label) {
  return label === null || label === undefined || label === ""
    ? el("span", { class: "unlabelled", text: "no label" })
    : el("span", { class: "label-text", text: label });
}

// ---------------------------------------------------------------- gallery: browse and edit

const gallery = { offset: 0, total: 0, persons: [] };

async function browse(offset) {
  const status = $("browse-status");
  $("browse-error").hidden = true;
  status.textContent = "Loading…";
  $("browse-list").setAttribute("aria-busy", "true");
  try {
    const page = await request({ method: "GET", url: `../gallery/persons?offset=${Math.max(0, offset)}&limit=${PAGE_SIZE}` });
    if (!page.persons.length && page.total && offset > 0) {
      browse(Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE)); // the last page went
      return;
    }
    Object.assign(gallery, { offset: page.offset, total: page.total, persons: page.persons });
    $("browse-list").replaceChildren(...page.persons.map(personCard));
    status.textContent = page.total ? `${page.total} ${page.total === 1 ? "person" : "persons"}` : "The gallery is empty.";
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    $("browse-page").textContent = `Page ${Math.floor(page.offset / PAGE_SIZE) + 1} of ${pages}`;
    $("browse-previous").disabled = page.offset === 0;
    $("browse-next").disabled = page.offset + PAGE_SIZE >= page.total;
    enrolTargets();
  } catch (error) {
    status.textContent = "";
    $("browse-error").textContent = error.message;
    $("browse-error").hidden = false;
  } finally {
    $("browse-list").removeAttribute("aria-busy");
  }
}

/** "Enrol as": a new person, or a view of one of the persons of the page shown. */
function enrolTargets() {
  const select = $("enrol-target");
  const kept = select.value;
  const options = gallery.persons.map((person) => el("option", { value: person.person_id },
    `a view of ${person.label ?? "no label"} (${person.person_id.slice(0, 8)})`));
  select.replaceChildren(el("option", { value: "" }, "a new person"), ...options);
  select.value = gallery.persons.some((p) => p.person_id === kept) ? kept : "";
  select.dispatchEvent(new Event("change"));
}

function nameOf(person) {
  return person.label ?? `the unlabelled person ${person.person_id.slice(0, 8)}`;
}

/** One enrolled person: label, facts, metadata, views, and what can be done to it. */
function personCard(person) {
  const id = person.person_id;
  const card = el("li", { dataset: { personId: id }, "aria-labelledby": `person-${id}` });
  const views = person.views.map((view, i) => {
    const remove = el("button", { type: "button", class: "small quiet", "aria-label": `Delete view ${i + 1} of ${nameOf(person)}` }, "Delete view");
    remove.addEventListener("click", () => deleteView(person, view, i));
    return el("li", { dataset: { viewId: view.view_id } },
      el("span", { text: `View ${i + 1}` }),
      el("span", { text: view.source ? `from ${view.source}` : "no source" }),
      el("span", { text: formatTime(view.created) }),
      el("span", { text: `box ${view.bbox.join(",")}` }),
      view.has_crop ? cropCanvas(person, view, i) : el("span", { text: "no crop kept" }),
      remove);
  });
  const metadata = Object.keys(person.metadata).length
    ? el("pre", { class: "metadata", "aria-label": "Metadata", text: JSON.stringify(person.metadata, null, 1) })
    : el("p", { class: "hint", text: "No metadata." });
  const edit = el("button", { type: "button", class: "small", "aria-label": `Edit ${nameOf(person)}` }, "Rename or edit");
  const merge = el("button", { type: "button", class: "small", "aria-label": `Merge another person into ${nameOf(person)}` }, "Merge…");
  const remove = el("button", { type: "button", class: "small danger", "aria-label": `Delete ${nameOf(person)}` }, "Delete");
  const editForm = editPersonForm(person);
  const mergeForm = mergePersonForm(person);
  edit.addEventListener("click", () => {
    mergeForm.hidden = true;
    editForm.hidden = !editForm.hidden;
    if (!editForm.hidden) editForm.querySelector("input").focus();
  });
  merge.addEventListener("click", () => {
    editForm.hidden = true;
    mergeForm.hidden = !mergeForm.hidden;
    if (!mergeForm.hidden) mergeForm.querySelector("input").focus();
  });
  remove.addEventListener("click", () => deletePerson(person));
  card.append(
    el("h4", { id: `person-${id}` }, labelNode(person.label)),
    el("p", { class: "person-id", text: `id ${id}` }),
    el("dl", { class: "facts" },
      el("dt", { text: "Enrolled" }), el("dd", { text: formatTime(person.created) }),
      el("dt", { text: "Views" }), el("dd", { text: String(person.views.length) }),
      el("dt", { text: "Embedder" }), el("dd", { text: person.model }),
      el("dt", { text: "Crop kept" }), el("dd", { text: person.has_crop ? "yes" : "no" })),
    metadata,
    el("ul", { class: "views", "aria-label": "Views" }, ...views),
    el("div", { class: "actions" }, edit, merge, remove),
    editForm,
    mergeForm,
  );
  return card;
}

/** A view's kept crop, fetched with the key and drawn on a canvas: no image URL to load, so
 * the page's policy stays its own origin only. */
function cropCanvas(person, view, i) {
  const canvas = el("canvas", { class: "crop", role: "img", "aria-label": `Crop of view ${i + 1} of ${nameOf(person)}` });
  const url = `../gallery/persons/${encodeURIComponent(person.person_id)}/views/${encodeURIComponent(view.view_id)}/crop`;
  const key = storedKey();
  fetch(url, { headers: key ? { "X-API-Key": key } : {}, cache: "no-store" })
    .then((answer) => (answer.ok ? answer.blob() : Promise.reject(new Error(`${answer.status}`))))
    .then((blob) => createImageBitmap(blob))
    .then((bitmap) => {
      canvas.height = CROP_HEIGHT;
      canvas.width = Math.max(1, Math.round((bitmap.width * CROP_HEIGHT) / bitmap.height));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      canvas.dataset.drawn = "true";
    })
    .catch(() => canvas.replaceWith(el("span", { text: "crop kept (not shown)" })));
  return canvas;
}

/** The form that renames a person or replaces its metadata (PATCH). */
function editPersonForm(person) {
  const prefix = `edit-${person.person_id}`;
  const form = el("form", { id: `${prefix}-form`, class: "edit", novalidate: "" });
  form.hidden = true;
  const label = el("input", { type: "text", id: `${prefix}-label`, maxlength: "200", autocomplete: "off", "aria-describedby": `${prefix}-label-error` });
  label.value = person.label ?? "";
  const metadata = el("textarea", { id: `${prefix}-metadata`, rows: "2", spellcheck: "false", "aria-describedby": `${prefix}-metadata-error` });
  metadata.value = JSON.stringify(person.metadata);
  const cancel = el("button", { type: "button", class: "quiet" }, "Cancel");
  cancel.addEventListener("click", () => {
    form.hidden = true;
  });
  form.append(
    el("div", { class: "field" }, el("label", { for: label.id, text: "Label (empty: no label)" }), label,
      el("p", { class: "field-error", id: `${prefix}-label-error`, hidden: "" })),
    el("div", { class: "field" }, el("label", { for: metadata.id, text: "Metadata (a JSON object)" }), metadata,
      el("p", { class: "field-error", id: `${prefix}-metadata-error`, hidden: "" })),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Save"), cancel,
      el("progress", { id: `${prefix}-progress`, hidden: "", "aria-label": "Saving" }),
      el("p", { class: "status", id: `${prefix}-status`, role: "status" })),
    el("p", { class: "form-error", id: `${prefix}-form-error`, role: "alert", hidden: "" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(prefix);
    const changes = {};
    const newLabel = label.value.trim() ? label.value : null;
    if (newLabel !== (person.label ?? null)) changes.label = newLabel;
    const text = metadata.value.trim() || "{}";
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      showError(prefix, fieldError("metadata", `Not JSON: ${error.message}`));
      return;
    }
    if (JSON.stringify(parsed) !== JSON.stringify(person.metadata)) changes.metadata = parsed;
    if (!Object.keys(changes).length) {
      form.hidden = true;
      return;
    }
    const busy = new Busy(prefix);
    busy.start("Saving…");
    try {
      await request({ method: "PATCH", url: `../gallery/persons/${encodeURIComponent(person.person_id)}`, json: changes });
      busy.done("Saved.");
      browse(gallery.offset);
    } catch (error) {
      busy.done("");
      showError(prefix, error);
    }
  });
  return form;
}

/** The form that merges another person into this one: its views move here, it goes. */
function mergePersonForm(person) {
  const prefix = `merge-${person.person_id}`;
  const form = el("form", { id: `${prefix}-form`, class: "edit", novalidate: "" });
  form.hidden = true;
  const listId = `${prefix}-choices`;
  const other = el("input", { type: "text", id: `${prefix}-from`, list: listId, autocomplete: "off", spellcheck: "false", "aria-describedby": `${prefix}-from-error` });
  const choices = el("datalist", { id: listId }, ...gallery.persons
    .filter((p) => p.person_id !== person.person_id)
    .map((p) => el("option", { value: p.person_id, label: p.label ?? "no label" })));
  const cancel = el("button", { type: "button", class: "quiet" }, "Cancel");
  cancel.addEventListener("click", () => {
    form.hidden = true;
  });
  form.append(
    el("div", { class: "field" },
      el("label", { for: other.id, text: `Id of the person to merge into ${nameOf(person)} (it is removed, its views move here)` }),
      other, choices, el("p", { class: "field-error", id: `${prefix}-from-error`, hidden: "" })),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Merge"), cancel,
      el("progress", { id: `${prefix}-progress`, hidden: "", "aria-label": "Merging" }),
      el("p", { class: "status", id: `${prefix}-status`, role: "status" })),
    el("p", { class: "form-error", id: `${prefix}-form-error`, role: "alert", hidden: "" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(prefix);
    const from = other.value.trim();
    if (!from) {
      showError(prefix, fieldError("from", "Give the id of the person to merge."));
      return;
    }
    const busy = new Busy(prefix);
    busy.start("Merging…");
    try {
      await request({ method: "POST", url: `../gallery/persons/${encodeURIComponent(person.person_id)}/merge`, json: { from } });
      busy.done("Merged.");
      browse(gallery.offset);
    } catch (error) {
      busy.done("");
      showError(prefix, error);
    }
  });
  return form;
}

/** Ask before erasing: true when the user confirms. */
function confirmed(message, action) {
  const dialog = $("confirm-dialog");
  $("confirm-message").textContent = message;
  $("confirm-yes").textContent = action;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

async function deletePerson(person) {
  const views = person.views.length;
  const ok = await confirmed(
    `Delete ${nameOf(person)} and its ${views} ${views === 1 ? "view" : "views"}? They are erased from the gallery.`,
    "Delete the person");
  if (!ok) return;
  await galleryChange({ method: "DELETE", url: `../gallery/persons/${encodeURIComponent(person.person_id)}` },
    `Deleted ${nameOf(person)}.`);
}

async function deleteView(person, view, i) {
  const last = person.views.length === 1 ? " It is the person's only view: the person goes with it." : "";
  const ok = await confirmed(`Delete view ${i + 1} of ${nameOf(person)}?${last}`, "Delete the view");
  if (!ok) return;
  await galleryChange({
    method: "DELETE",
    url: `../gallery/persons/${encodeURIComponent(person.person_id)}/views/${encodeURIComponent(view.view_id)}`,
  }, `Deleted view ${i + 1} of ${nameOf(person)}.`);
}

/** A change to the gallery from the list: done, then the page shown again. */
async function galleryChange(options, success) {
  $("browse-error").hidden = true;
  try {
    await request(options);
    await browse(gallery.offset);
    $("browse-status").textContent = `${success} ${$("browse-status").textContent}`;
  } catch (error) {
    $("browse-error").textContent = error.message;
    $("browse-error").hidden = false;
  }
}

// ---------------------------------------------------------------- start

function start() {
  compareView.init();
  groupView.init();
  searchView.init();
  enableDrops();
  $("browse-previous").addEventListener("click", () => browse(gallery.offset - PAGE_SIZE));
  $("browse-next").addEventListener("click", () => browse(gallery.offset + PAGE_SIZE));
  $("browse-reload").addEventListener("click", () => browse(gallery.offset));
  $("key-button").addEventListener("click", () => {
    askForKey(storedKey() ? "A key is kept for this tab. Give another, or forget it." : "Give the service's API key, if it has one.");
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(redraw, 100);
  });
  window.addEventListener("hashchange", showView);
  showView();
}

start();
