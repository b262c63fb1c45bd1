// zspace page: talks to the JSON/PNG API of the same server; no libraries, no network beyond it.
"use strict";

const $ = (id) => document.getElementById(id);
const MORPH_STEPS = 16;
let health = { conditional: true, classifier: false };
// What /api/restyle can redraw a drawing with: "restyle" (the generator's noise) and the
// translator methods the server found (/api/info's restyle_methods).
let restyleMethods = [];
const METHOD_NAMES = {
  restyle: "restyle: the generator's noise",
  regular: "regular GAN translator",
  cycle: "cycle-consistent translator",
  paired: "paired (pix2pix) translator",
  shift: "shift by the class means",
};

async function apiError(response) {
  try {
    const body = await response.json();
    return body.error || response.statusText;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

function showError(id, message) {
  const element = $(id);
  element.textContent = message || "";
  element.hidden = !message;
}

function fillDigitSelect(select, withAll, selected) {
  select.innerHTML = "";
  if (withAll) select.add(new Option("all", ""));
  for (let d = 0; d < 10; d++) select.add(new Option(String(d), String(d)));
  select.value = selected;
}

// --- samples -------------------------------------------------------------------------------
async function generate(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({ n: $("count").value, seed: $("seed").value, scale: "3" });
  if (health.conditional && $("digit").value !== "") params.set("digit", $("digit").value);
  const response = await fetch(`/api/generate?${params}`);
  if (!response.ok) return showError("samples-error", await apiError(response));
  showError("samples-error", "");
  const image = new Image();
  image.alt = "generated digits";
  image.src = URL.createObjectURL(await response.blob());
  $("samples").replaceChildren(image);
}

// --- morph ---------------------------------------------------------------------------------
let morphFrames = [];
let morphRequest = 0;

function showMorphFrame() {
  const index = Number($("morph-slider").value);
  if (!morphFrames[index]) return;
  $("morph-img").src = morphFrames[index];
  $("morph-strip").querySelectorAll("img").forEach((img, i) => img.classList.toggle("current", i === index));
}

async function loadMorph() {
  const request = ++morphRequest;
  const params = new URLSearchParams({
    seed: $("morph-seed").value, steps: String(MORPH_STEPS), space: $("morph-space").value,
    scale: "6", format: "json",
  });
  if (health.conditional) {
    params.set("from_digit", $("morph-from").value);
    params.set("to_digit", $("morph-to").value);
  } else {
    params.set("to_seed", String(Number($("morph-seed").value) + 1));
  }
  const response = await fetch(`/api/interpolate?${params}`);
  if (request !== morphRequest) return; // a newer request replaced this one
  if (!response.ok) return showError("morph-error", await apiError(response));
  showError("morph-error", "");
  morphFrames = (await response.json()).images;
  $("morph-strip").replaceChildren(...morphFrames.map((src, i) => {
    const img = new Image();
    img.src = src;
    img.alt = `frame ${i}`;
    img.addEventListener("click", () => { $("morph-slider").value = String(i); showMorphFrame(); });
    return img;
  }));
  showMorphFrame();
}

// --- drawing -------------------------------------------------------------------------------
const canvas = $("canvas");
const pen = canvas.getContext("2d");
let drawing = false;
let drawTimer = null;
let drawn = false; // whether the canvas holds a drawing to restyle again

function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  $("prediction").textContent = "draw a digit";
  $("prediction").classList.add("muted");
  $("probabilities").replaceChildren();
  $("restyled").replaceChildren();
  showNote("");
  showError("draw-error", "");
  drawn = false;
}

function showNote(message) {
  $("restyle-note").textContent = message;
  $("restyle-note").hidden = !message;
}

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width,
          (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  const [x, y] = canvasPoint(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.1, y + 0.1);
  pen.stroke();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = canvasPoint(event);
  pen.lineTo(x, y);
  pen.stroke();
});
for (const name of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(name, () => {
    if (!drawing) return;
    drawing = false;
    drawn = true;
    clearTimeout(drawTimer);
    drawTimer = setTimeout(readDrawing, 150);
  });
}

function showProbabilities(probabilities) {
  const rows = [];
  probabilities.forEach((p, digit) => {
    const name = document.createElement("span");
    name.textContent = String(digit);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(p * 100)}%`;
    const value = document.createElement("span");
    value.textContent = `${(p * 100).toFixed(1)}%`;
    rows.push(name, bar, value);
  });
  $("probabilities").replaceChildren(...rows);
}

function drawingForm(blob) {
  const data = new FormData();
  data.append("image", blob, "digit.png");
  return data;
}

async function canvasBlob() {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function readDrawing() {
  const blob = await canvasBlob();
  const answer = await fetch("/api/classify", { method: "POST", body: drawingForm(blob) });
  if (answer.ok) {
    const result = await answer.json();
    const best = result.probabilities[result.digit];
    $("prediction").textContent = `looks like a ${result.digit} (${(best * 100).toFixed(0)}%)`;
    $("prediction").classList.remove("muted");
    showProbabilities(result.probabilities);
  } else {
    $("prediction").textContent = await apiError(answer);
  }
  await restyleDrawing(blob);
}

let restyleRequest = 0;

async function restyleDrawing(blob) {
  if (!restyleMethods.length) return;
  const request = ++restyleRequest;
  const method = $("restyle-method").value;
  const params = new URLSearchParams({ format: "json", scale: "2", method });
  const restyle = await fetch(`/api/restyle?${params}`, { method: "POST", body: drawingForm(blob) });
  if (request !== restyleRequest) return; // a newer request replaced this one
  if (!restyle.ok) {
    $("restyled").replaceChildren();
    showNote("");
    return showError("draw-error", await apiError(restyle));
  }
  showError("draw-error", "");
  const result = await restyle.json();
  const unreachable = result.unreachable || [];
  showNote(unreachable.length ? `no ${method} translator reaches ${unreachable.join(", ")}` : "");
  $("restyled").replaceChildren(...result.images.map((src, i) => {
    const figure = document.createElement("figure");
    const img = new Image();
    img.src = src;
    img.alt = `restyled as ${result.digits[i]}`;
    if (result.translators) img.title = result.translators[i];
    const caption = document.createElement("figcaption");
    caption.textContent = String(result.digits[i]);
    figure.append(img, caption);
    return figure;
  }));
}

function fillMethodSelect(methods) {
  restyleMethods = methods;
  const select = $("restyle-method");
  select.replaceChildren(...methods.map((m) => new Option(METHOD_NAMES[m] || m, m)));
  if (methods.length) select.value = methods.includes("restyle") ? "restyle" : methods[0];
  // One way or none: nothing to choose.
  $("restyle-controls").hidden = methods.length < 2;
  select.addEventListener("change", async () => { if (drawn) await restyleDrawing(await canvasBlob()); });
}

// --- start-up ------------------------------------------------------------------------------
async function start() {
  try {
    const response = await fetch("/api/health");
    health = await response.json();
    $("status").textContent = `${health.conditional ? "conditional" : "unconditional"} GAN` +
      (health.classifier ? " · classifier loaded" : " · no classifier (drawing is read only when the server has one)");
  } catch (error) {
    $("status").textContent = "the server does not answer";
    return;
  }
  try {
    const info = await (await fetch("/api/info")).json();
    fillMethodSelect(info.restyle_methods || (health.conditional ? ["restyle"] : []));
  } catch (error) {
    fillMethodSelect(health.conditional ? ["restyle"] : []);
  }
  fillDigitSelect($("digit"), true, "7");
  fillDigitSelect($("morph-from"), false, "3");
  fillDigitSelect($("morph-to"), false, "8");
  for (const id of ["digit", "morph-from", "morph-to"]) $(id).disabled = !health.conditional;
  pen.strokeStyle = "#fff";
  pen.lineWidth = 20;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  clearCanvas();

  $("samples-form").addEventListener("submit", generate);
  $("reseed").addEventListener("click", () => { $("seed").value = String(Math.floor(Math.random() * 1e6)); generate(); });
  for (const id of ["morph-from", "morph-to", "morph-seed", "morph-space"]) $(id).addEventListener("change", loadMorph);
  $("morph-slider").max = String(MORPH_STEPS - 1);
  $("morph-slider").addEventListener("input", showMorphFrame);
  $("clear").addEventListener("click", clearCanvas);
  document.body.dataset.ready = "true";
  generate();
  loadMorph();
}

start();
