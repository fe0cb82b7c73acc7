// Presenter keys, installed once into the app's own page (not the component's iframe, which is
// replaced on navigation; presenter_keys.html does the installing): <- / -> step the animation
// on screen one frame (a Plotly animation's slider, or a range slider inside an in-browser
// player such as the Forward scrubber), space plays / pauses it, Enter presses the page's main
// (primary) button. Keys typed into a widget are left alone. window.__difflabPresenter
// switches it on and off with presenter mode (dashboard/ui.py: presenter_keys).
(() => {
const W = window, D = document;
const typing = e => { const t = e.target, tag = (t && t.tagName || "").toLowerCase();
  return ["input", "textarea", "select"].includes(tag) || (t && t.isContentEditable)
    || ["slider", "combobox", "spinbutton", "textbox"].includes(t && t.getAttribute
      && t.getAttribute("role")); };
const onScreen = el => { const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < W.innerHeight; };
const mouse = (el, type, x, y) => el.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true,
  view: W, clientX: x, clientY: y, button: 0}));
const centre = el => { const r = el.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2]; };
function players() {
  const plots = [...D.querySelectorAll(".js-plotly-plot")]
    .filter(p => p.querySelector(".slider-rail-touch-rect")).map(p => ({kind: "plotly", el: p}));
  const frames = [...D.querySelectorAll("iframe")].map(f => { try { return {f, d: f.contentDocument}; }
    catch (e) { return null; } }).filter(x => x && x.d && x.d.querySelector("input[type=range]"))
    .map(x => ({kind: "iframe", el: x.f, doc: x.d}));
  const all = [...plots, ...frames];
  return all.filter(p => onScreen(p.el)).concat(all.filter(p => !onScreen(p.el)));
}
function stepPlotly(gd, d) {  // a click on the slider's rail where step i + d sits
  const sl = gd._fullLayout && gd._fullLayout.sliders && gd._fullLayout.sliders[0];
  const rail = gd.querySelector(".slider-rail-touch-rect");
  if (!sl || !rail || !sl._visibleSteps || sl._visibleSteps.length < 2) return false;
  const n = sl._visibleSteps.length, j = Math.max(0, Math.min(n - 1, (sl.active || 0) + d));
  const r = rail.getBoundingClientRect(), y = r.top + r.height / 2;
  const x = r.left + 10 + j / (n - 1) * (r.width - 20);  // plotly's 10 px step inset
  mouse(rail, "mousedown", x, y); mouse(gd, "mouseup", x, y);
  gd.dataset.difflabPlaying = "";
  return true;
}
function stepRange(doc, d) {
  const r = doc.querySelector("input[type=range]"), st = +r.step || 1;
  r.value = Math.max(+r.min, Math.min(+r.max, +r.value + d * st));
  r.dispatchEvent(new Event("input", {bubbles: true})); r.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
}
function playPause(p) {
  if (p.kind === "plotly") {
    const b = [...p.el.querySelectorAll(".updatemenu-button")];
    if (b.length < 2) return false;
    const playing = p.el.dataset.difflabPlaying === "1";
    mouse(b[playing ? 1 : 0], "click", ...centre(b[playing ? 1 : 0]));
    p.el.dataset.difflabPlaying = playing ? "" : "1";
    return true;
  }
  const b = [...p.doc.querySelectorAll("button")].find(x => /play|pause|▶|❚❚/i.test(x.textContent + x.id));
  if (!b) return false;
  b.click(); return true;
}
function mainButton() {
  const sel = '[data-testid="stMain"] :is([data-testid="stBaseButton-primary"],'
    + '[data-testid="stBaseButton-primaryFormSubmit"])';
  const bs = [...D.querySelectorAll(sel)].filter(b => !b.disabled);
  return bs.find(onScreen) || bs[0];
}
if (!W.__difflabKeys) {
  W.__difflabKeys = true;
  D.addEventListener("keydown", e => {
    if (!W.__difflabPresenter || typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    let done = false;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      const p = players()[0], d = e.key === "ArrowRight" ? 1 : -1;
      done = !!p && (p.kind === "plotly" ? stepPlotly(p.el, d) : stepRange(p.doc, d));
    } else if (e.key === " ") {
      const p = players()[0]; done = !!p && playPause(p);
    } else if (e.key === "Enter") {
      const b = mainButton(); if (b) { b.click(); done = true; }
    }
    if (done) { e.preventDefault(); e.stopPropagation(); }
  }, true);
}
})();
