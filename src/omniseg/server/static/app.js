// The omniseg page: plain JavaScript, no build step. It talks to the REST API of `omniseg serve`.
import { $, api, setStatus } from "/static/common.js";

const state = { models: [], model: null, file: null, image: null, embedding: null, points: [], labels: [], box: null,
                logits: null, mask: null, masks: null, objects: [], drag: null };

function pngImage(base64) {
  return new Promise((resolve) => { const img = new Image(); img.onload = () => resolve(img); img.src = `data:image/png;base64,${base64}`; });
}

function pixels(img) {
  const canvas = new OffscreenCanvas(img.width, img.height);
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return context.getImageData(0, 0, img.width, img.height).data;
}

async function loadModels() {
  state.models = await api("/api/models");
  $("model").innerHTML = state.models.map((m) => `<option value="${m.name}">${m.name} (${m.engine ? "prompt engine, no weights" : m.task})</option>`).join("");
  state.model = state.models[0] || null;
  updatePanels();
}

function updatePanels() {
  const promptable = state.model && state.model.task === "promptable";
  $("prompt-box").hidden = !promptable;
  $("detect-box").hidden = !state.model || !["instance", "panoptic"].includes(state.model.task);
  $("download-coco").hidden = !promptable;
  $("save-labels").hidden = !promptable;
  legend();
}

function legend() {
  const items = state.model && state.model.task === "promptable"
    ? state.objects.map((o, i) => [o.name, colour(i + 1)]).concat([["current mask", [30, 144, 255]]])
    : (state.model ? state.model.classes.map((name, i) => [name, state.model.palette[i]]) : []);
  $("legend").innerHTML = items.map(([name, c]) => `<li><span class="swatch" style="background:rgb(${c.join(",")})"></span>${name}</li>`).join("");
}

function colour(i) {  // distinct colours for kept objects
  const hue = (i * 137.5) % 360, s = 0.65, l = 0.5, k = (n) => (n + hue / 30) % 12, a = s * Math.min(l, 1 - l);
  const f = (n) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))));
  return [f(0), f(8), f(4)];
}

async function openFile(file) {
  state.file = file;
  const url = URL.createObjectURL(file);
  state.image = await new Promise((resolve) => { const img = new Image(); img.onload = () => resolve(img); img.src = url; });
  for (const id of ["image", "overlay"]) { $(id).width = state.image.width; $(id).height = state.image.height; }
  $("image").getContext("2d").drawImage(state.image, 0, 0);
  $("drop").hidden = true;
  $("frame").hidden = false;
  clearPrompt();
  state.objects = [];
  renderObjects();
  await run();
}

async function run() {
  if (!state.file || !state.model) return;
  const form = new FormData();
  form.append("file", state.file);
  form.append("model", state.model.name);
  if (state.model.task !== "semantic" && state.model.task !== "promptable") form.append("score_threshold", $("min-score").value);
  try {
    if (state.model.task === "promptable") {
      setStatus("encoding the image...");
      state.embedding = (await api("/api/embed", { method: "POST", body: form })).embedding_id;
      setStatus(`${state.model.name}: click the object (right-click: background), or drag a box`);
      draw();
    } else {
      setStatus("predicting...");
      const answer = await api("/api/predict", { method: "POST", body: form });
      const png = answer.mask_png || answer.panoptic_png || answer.instances_png;  // downloaded as it came
      const data = pixels(await pngImage(png));
      if (answer.mask_png) state.mask = { kind: "classes", data, png };
      else if (answer.panoptic_png) state.mask = { kind: "rgb", data, png };
      else state.mask = { kind: "instances", instances: answer.instances, data, png };
      setStatus(`${state.model.name}: ${answer.seconds.toFixed(2)} s`);
      draw();
    }
  } catch (error) { setStatus(`error: ${error.message}`); }
}

async function prompt() {
  if (!state.embedding) return;
  if (!state.points.length && !state.box) { state.mask = null; state.logits = null; draw(); return; }
  const body = { embedding_id: state.embedding, points: state.points, labels: state.labels, boxes: state.box ? [state.box] : [],
                 logits_id: state.logits, multimask: state.points.length === 1 && !state.box };
  try {
    const started = performance.now();
    const answer = await api("/api/prompt", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    state.masks = answer.masks;
    state.mask = { kind: "binary", data: pixels(await pngImage(answer.masks[answer.best])), png: answer.masks[answer.best] };
    state.logits = answer.logits_id;
    setStatus(`mask in ${Math.round(performance.now() - started)} ms, predicted IoU ${answer.scores[answer.best]?.toFixed(3) ?? "n/a"}`);
    draw();
  } catch (error) { setStatus(`error: ${error.message}`); }
}

function draw() {
  const canvas = $("overlay"), context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const alpha = $("opacity").value / 100;
  const paint = context.createImageData(width, height), out = paint.data;
  const put = (i, c) => { out[i] = c[0]; out[i + 1] = c[1]; out[i + 2] = c[2]; out[i + 3] = Math.round(255 * alpha); };
  state.objects.forEach((o, k) => { const c = colour(k + 1); for (let i = 0; i < out.length; i += 4) if (o.data[i] > 0) put(i, c); });
  const mask = state.mask;
  if (mask && mask.kind === "binary") for (let i = 0; i < out.length; i += 4) { if (mask.data[i] > 0) put(i, [30, 144, 255]); }
  if (mask && mask.kind === "classes") {
    // the palette's colours; black (the usual background and unlabelled colour) stays clear
    for (let i = 0; i < out.length; i += 4) { const c = [mask.data[i], mask.data[i + 1], mask.data[i + 2]]; if (c[0] + c[1] + c[2] > 0) put(i, c); }
  }
  if (mask && mask.kind === "instances") for (let i = 0; i < out.length; i += 4) { if (mask.data[i] > 0) put(i, colour(mask.data[i])); }
  if (mask && mask.kind === "rgb") for (let i = 0; i < out.length; i += 4) { if (mask.data[i] + mask.data[i + 1] + mask.data[i + 2] > 0) put(i, colour(mask.data[i] + 256 * mask.data[i + 1])); }
  context.putImageData(paint, 0, 0);
  if (mask && mask.kind === "instances") {
    context.lineWidth = 2;
    mask.instances.forEach((inst, k) => { context.strokeStyle = `rgb(${colour(k + 1).join(",")})`; const [x0, y0, x1, y1] = inst.box; context.strokeRect(x0, y0, x1 - x0, y1 - y0); context.fillStyle = context.strokeStyle; context.fillText(`${inst.class} ${inst.score.toFixed(2)}`, x0 + 2, y0 + 12); });
  }
  if (state.box || state.drag) {
    const [x0, y0, x1, y1] = state.box || state.drag;
    context.strokeStyle = "rgb(255,220,0)"; context.lineWidth = Math.max(2, width / 300); context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  state.points.forEach(([x, y], i) => {
    context.beginPath(); context.arc(x, y, Math.max(4, width / 120), 0, 2 * Math.PI);
    context.fillStyle = state.labels[i] === 1 ? "rgb(0,200,0)" : "rgb(230,0,0)"; context.fill();
    context.lineWidth = 2; context.strokeStyle = "#fff"; context.stroke();
  });
}

function imagePoint(event) {
  const rect = $("overlay").getBoundingClientRect();
  return [(event.clientX - rect.left) * ($("overlay").width / rect.width), (event.clientY - rect.top) * ($("overlay").height / rect.height)];
}

function clearPrompt() { state.points = []; state.labels = []; state.box = null; state.logits = null; state.mask = null; state.drag = null; }

function renderObjects() {
  $("objects").innerHTML = state.objects.map((o) => `<li>${o.name} (${o.area} px)</li>`).join("");
  legend();
}

function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name; a.click();
}

function objectsMaskPng() {  // the kept objects (or the current mask) as an index PNG: object k has value k
  const canvas = document.createElement("canvas");
  canvas.width = state.image.width; canvas.height = state.image.height;
  const context = canvas.getContext("2d"), data = context.createImageData(canvas.width, canvas.height);
  const layers = state.objects.length ? state.objects : (state.mask && state.mask.kind === "binary" ? [state.mask] : []);
  layers.forEach((o, k) => { for (let i = 0; i < data.data.length; i += 4) if (o.data[i] > 0) { data.data[i] = data.data[i + 1] = data.data[i + 2] = state.objects.length ? k + 1 : 255; } });
  for (let i = 3; i < data.data.length; i += 4) data.data[i] = 255;
  context.putImageData(data, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function rle(data) {  // COCO's uncompressed RLE: run lengths in column-major order, starting with background
  const { width, height } = state.image, counts = [];
  let previous = 0, run = 0;
  for (let x = 0; x < width; x++) for (let y = 0; y < height; y++) {
    const value = data[4 * (y * width + x)] > 0 ? 1 : 0;
    if (value !== previous) { counts.push(run); run = 0; previous = value; }
    run++;
  }
  counts.push(run);
  return { size: [height, width], counts };
}

function boxOf(data) {  // [x, y, w, h] of a mask
  const { width, height } = state.image;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (data[4 * (y * width + x)] > 0) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

function wire() {
  $("model").addEventListener("change", () => { state.model = state.models.find((m) => m.name === $("model").value); clearPrompt(); updatePanels(); run(); });
  $("file").addEventListener("change", (e) => e.target.files[0] && openFile(e.target.files[0]));
  $("opacity").addEventListener("input", draw);
  $("min-score").addEventListener("change", run);
  const stage = $("stage");
  stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("dragging"); });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (e) => { e.preventDefault(); stage.classList.remove("dragging"); if (e.dataTransfer.files[0]) openFile(e.dataTransfer.files[0]); });
  const overlay = $("overlay");
  overlay.addEventListener("contextmenu", (e) => e.preventDefault());
  overlay.addEventListener("mousedown", (e) => { if (state.model?.task === "promptable") state.drag = [...imagePoint(e), ...imagePoint(e)]; state.dragButton = e.button; state.dragShift = e.shiftKey; });
  overlay.addEventListener("mousemove", (e) => { if (state.drag) { const [x, y] = imagePoint(e); state.drag[2] = x; state.drag[3] = y; draw(); } });
  overlay.addEventListener("mouseup", () => {
    if (!state.drag) return;
    const [x0, y0, x1, y1] = state.drag;
    state.drag = null;
    if (Math.hypot(x1 - x0, y1 - y0) > 6) state.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    else { state.points.push([Math.round(x0), Math.round(y0)]); state.labels.push(state.dragButton === 2 || state.dragShift ? 0 : 1); }
    prompt();
  });
  $("undo").addEventListener("click", () => { if (state.points.length) { state.points.pop(); state.labels.pop(); } else state.box = null; state.logits = null; prompt(); });
  $("clear").addEventListener("click", () => { clearPrompt(); draw(); });
  $("keep").addEventListener("click", () => {
    const name = $("class-name").value.trim();
    if (!state.mask || state.mask.kind !== "binary") { setStatus("prompt a mask first"); return; }
    if (!name) { setStatus("give the object a class name"); return; }
    let area = 0; for (let i = 0; i < state.mask.data.length; i += 4) if (state.mask.data[i] > 0) area++;
    if (!area) { setStatus("the mask is empty: click inside the object, or draw its box"); return; }
    state.objects.push({ name, data: state.mask.data, png: state.mask.png, area });
    clearPrompt(); renderObjects(); draw(); setStatus(`kept ${name}`);
  });
  $("download-mask").addEventListener("click", async () => {
    if (!state.image) return;
    if (state.mask && state.mask.kind !== "binary" && !state.objects.length) {  // the model's answer: class ids, instance ids or panoptic RGB
      download("mask.png", await (await fetch(`data:image/png;base64,${state.mask.png}`)).blob());
    } else download("mask.png", await objectsMaskPng());
  });
  $("download-coco").addEventListener("click", () => {
    const names = [...new Set(state.objects.map((o) => o.name))];
    const coco = { images: [{ id: 1, file_name: state.file?.name, width: state.image?.width, height: state.image?.height }],
                   categories: names.map((n, i) => ({ id: i + 1, name: n })),
                   annotations: state.objects.map((o, k) => ({ id: k + 1, image_id: 1, category_id: names.indexOf(o.name) + 1, area: o.area,
                                                                iscrowd: 0, bbox: boxOf(o.data), segmentation: rle(o.data) })) };
    download("objects.json", new Blob([JSON.stringify(coco)], { type: "application/json" }));
  });
  $("save-labels").addEventListener("click", async () => {
    const form = new FormData();
    form.append("file", state.file);
    form.append("objects", JSON.stringify(state.objects.map((o) => ({ class: o.name, mask_png: o.png }))));
    try { const answer = await api("/api/labels", { method: "POST", body: form }); setStatus(`saved ${answer.saved} object(s): ${answer.images} image(s) in ${answer.label_dir}`); }
    catch (error) { setStatus(`error: ${error.message}`); }
  });
}

window.omnisegState = state;  // for the browser test and the console
wire();
loadModels().catch((error) => setStatus(`error: ${error.message}`));
