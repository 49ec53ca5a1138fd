// The video page: open a video, the server tracks it with the chosen run; play and scrub it with the tracks drawn
// (each id in one colour on every frame, its number at its box), click an object to select its track (or, with a
// Segment Anything 2 model served, to add or redraw it through the video), join two tracks, download tracks.json.
import { $, api, setStatus } from "/static/common.js";

const state = { video: null, info: null, frame: 0, playing: null, selected: 0, frames: new Map(), masks: new Map() };
window.omnisegVideo = state;

function colour(id) {  // the DAVIS (VOC) palette: the colour of an id is the same on every frame and in the PNGs
  let r = 0, g = 0, b = 0, c = id;
  for (let j = 0; j < 8; j++) { r |= ((c >> 0) & 1) << (7 - j); g |= ((c >> 1) & 1) << (7 - j); b |= ((c >> 2) & 1) << (7 - j); c >>= 3; }
  return [r, g, b];
}

function loadImage(url) {
  return new Promise((resolve, reject) => { const img = new Image(); img.onload = () => resolve(img); img.onerror = reject; img.src = url; });
}

async function labelsOf(index) {  // a frame's object ids: the server packs them as red + 256 x green
  if (state.masks.has(index)) return state.masks.get(index);
  const response = await fetch(`/api/videos/${state.video}/masks/${index}`);
  const bitmap = await createImageBitmap(await response.blob(), { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  const rgba = canvas.getContext("2d").getImageData(0, 0, bitmap.width, bitmap.height).data;
  const ids = new Uint32Array(bitmap.width * bitmap.height);
  for (let i = 0; i < ids.length; i++) ids[i] = rgba[4 * i] + 256 * rgba[4 * i + 1];
  state.masks.set(index, ids);
  return ids;
}

async function show(index) {
  state.frame = index;
  $("scrub").value = index;
  $("frame-number").textContent = `${index + 1} / ${state.info.frames}`;
  if (!state.frames.has(index)) state.frames.set(index, await loadImage(`/api/videos/${state.video}/frames/${index}`));
  const image = state.frames.get(index), ids = await labelsOf(index);
  if (state.frame !== index) return;  // scrubbed on meanwhile
  $("image").getContext("2d").drawImage(image, 0, 0);
  const { width, height } = state.info, zoom = $("overlay").width / width;
  const painted = new ImageData(width, height), alpha = Math.round(2.55 * Number($("opacity").value));
  for (let i = 0; i < ids.length; i++) {
    if (!ids[i]) continue;
    const [r, g, b] = colour(ids[i]), bright = ids[i] === state.selected;
    painted.data.set([r, g, b, bright ? Math.min(255, alpha + 80) : alpha], 4 * i);
  }
  state.painted = painted;  // the masks at the video's own size
  const native = new OffscreenCanvas(width, height);
  native.getContext("2d").putImageData(painted, 0, 0);
  const overlay = $("overlay").getContext("2d");  // drawn at about the screen's size: masks enlarged, ids in sharp text
  overlay.clearRect(0, 0, $("overlay").width, $("overlay").height);
  overlay.imageSmoothingEnabled = false;
  overlay.drawImage(native, 0, 0, $("overlay").width, $("overlay").height);
  const shown = $("overlay").getBoundingClientRect().width || $("overlay").width;
  overlay.font = `${Math.round(14 * $("overlay").width / shown)}px system-ui`;
  overlay.lineWidth = 3 * $("overlay").width / shown;
  for (const [id, track] of Object.entries(state.info.objects)) {
    const box = track.boxes[String(index)];
    if (!box) continue;
    const text = `${id} ${track.class}`, x = box[0] * zoom, y = Math.max(box[1] * zoom - 4, 14);
    overlay.strokeStyle = "black"; overlay.strokeText(text, x, y);
    overlay.fillStyle = "white"; overlay.fillText(text, x, y);
  }
  setStatus(`frame ${index + 1} of ${state.info.frames}`);
}

function listTracks() {
  $("tracks").innerHTML = Object.entries(state.info.objects).map(([id, t]) =>
    `<li data-id="${id}"><span class="swatch" style="background:rgb(${colour(Number(id)).join(",")})"></span>${id} ${t.class}: frames ${t.first + 1}-${t.last + 1}</li>`).join("");
  $("click-hint").textContent = state.info.sam2 ? "Click an object to add it, or redraw its track, with Segment Anything 2."
    : "Click an object to select its track.";
}

async function refresh() {
  state.info = await api(`/api/videos/${state.video}`);
  state.masks.clear();
  listTracks();
  await show(state.frame);
}

async function openVideo(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("model", $("model").value);
  setStatus("uploading");
  let job = await api("/api/videos", { method: "POST", body: form });
  state.video = job.id;
  state.frames.clear();
  while (job.status === "tracking") {
    setStatus(job.total ? `tracking: frame ${job.done} of ${job.total}` : "tracking");
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await api(`/api/videos/${state.video}`);
  }
  if (job.status !== "done") { setStatus(`failed: ${job.error}`); return; }
  state.info = job;
  const zoom = Math.max(1, Math.ceil(720 / job.width));  // the overlay's own pixels: a small video's ids stay legible
  $("image").width = job.width; $("image").height = job.height;
  $("overlay").width = job.width * zoom; $("overlay").height = job.height * zoom;
  $("scrub").max = job.frames - 1;
  $("drop").hidden = true;
  $("player").hidden = false;
  $("download-tracks").disabled = false;
  state.frame = 0;
  listTracks();
  await show(0);
  setStatus(`tracked ${Object.keys(job.objects).length} objects in ${job.frames} frames`);
}

function play() {
  if (state.playing) { clearInterval(state.playing); state.playing = null; $("play").textContent = "Play"; return; }
  $("play").textContent = "Pause";
  state.playing = setInterval(() => show((state.frame + 1) % state.info.frames), 1000 / (state.info.fps || 10));
}

async function clicked(event) {
  const rect = $("overlay").getBoundingClientRect();
  const x = (event.clientX - rect.left) * state.info.width / rect.width, y = (event.clientY - rect.top) * state.info.height / rect.height;
  setStatus(state.info.sam2 ? "following the object through the video" : "looking");
  const answer = await api(`/api/videos/${state.video}/click`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                               body: JSON.stringify({ frame: state.frame, x, y }) });
  state.selected = answer.track;
  if (answer.action === "followed") await refresh();
  $("selected-box").hidden = !state.selected;
  $("selected").textContent = state.selected ? `track ${state.selected} (${state.info.objects[state.selected].class})` : "";
  await show(state.frame);
  setStatus(state.selected ? `selected track ${state.selected}` : "no track there");
}

async function merge() {
  const target = Number($("merge-target").value);
  const answer = await api(`/api/videos/${state.video}/merge`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                               body: JSON.stringify({ source: state.selected, target }) });
  state.selected = target;
  await refresh();
  $("selected").textContent = `track ${target} (${state.info.objects[target].class})`;
  setStatus(`joined track ${answer.merged} into ${answer.into}`);
}

async function download() {
  const blob = await (await fetch(`/api/videos/${state.video}/tracks`)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "tracks.json";
  link.click();
}

async function start() {
  const models = await api("/api/models");
  $("model").innerHTML = models.filter((m) => m.task !== "promptable").map((m) => `<option value="${m.name}">${m.name} (${m.task})</option>`).join("");
  $("file").addEventListener("change", (e) => e.target.files[0] && openVideo(e.target.files[0]).catch((err) => setStatus(`error: ${err.message}`)));
  $("scrub").addEventListener("input", (e) => show(Number(e.target.value)));
  $("play").addEventListener("click", play);
  $("overlay").addEventListener("click", (e) => clicked(e).catch((err) => setStatus(`error: ${err.message}`)));
  $("merge").addEventListener("click", () => merge().catch((err) => setStatus(`error: ${err.message}`)));
  $("download-tracks").addEventListener("click", download);
  $("opacity").addEventListener("input", () => state.info && show(state.frame));
  setStatus("open a video");
}

start();
