// What every component page shares (web.page puts this before the page's own script).
// - The theme: the component's iframe is same-origin, so the app's text and background colours are
//   read from the Streamlit page around it and copied onto this document (--fg, --bg), with
//   data-theme = "light" | "dark" for the colours derived from them in the page's CSS and
//   color-scheme for the browser's own controls. They follow the app when its theme changes
//   (settings menu, or the system's light / dark): a "themechange" event asks the page to redraw
//   its canvases. Outside the app (a page saved to disk) prefers-color-scheme decides, in the CSS.
// - The iframe element's title: Streamlit titles every iframe "st.iframe", which is what a screen
//   reader names the frame by; it becomes this document's own <title>.
// - announce(text): the page's aria-live="polite" region (#live) says text once the value has
//   rested 300 ms (a screen reader would otherwise read every step of a drag or a playback).
const theme = (() => {
  const root = document.documentElement, mq = matchMedia("(prefers-color-scheme: dark)");
  const rgb = c => { const v = (/rgba?\(([^)]*)\)/.exec(c || "") || [, ""])[1].split(/[\s,/]+/)
    .filter(Boolean).map(Number); return v.length >= 3 ? {r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1} : null; };
  const lum = c => { const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  let app = null;
  try { app = window.parent !== window ? window.parent.document.querySelector('[data-testid="stApp"]') : null; }
  catch (e) { app = null; }  // not same-origin: the CSS's prefers-color-scheme decides
  function sync() {
    if (!app) return;
    const cs = window.parent.getComputedStyle(app), bg = rgb(cs.backgroundColor), fg = rgb(cs.color);
    if (!bg || !fg || bg.a < 1 || root.dataset.app === cs.backgroundColor + cs.color) return;
    root.dataset.app = cs.backgroundColor + cs.color;
    const dark = lum(bg) < lum(fg);
    root.style.setProperty("--bg", cs.backgroundColor);
    root.style.setProperty("--fg", cs.color);
    root.dataset.theme = dark ? "dark" : "light";
    root.style.colorScheme = dark ? "dark" : "light";
    window.dispatchEvent(new Event("themechange"));
  }
  sync();
  if (app) {  // a theme change restyles the app's root element (new class) and adds style sheets
    const later = () => requestAnimationFrame(sync);
    new MutationObserver(later).observe(app, {attributes: true});
    new MutationObserver(later).observe(window.parent.document.head, {childList: true});
    window.parent.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", later);
  } else {
    mq.addEventListener("change", () => window.dispatchEvent(new Event("themechange")));
  }
  return {
    dark: () => (root.dataset.theme ? root.dataset.theme === "dark" : mq.matches),
    css: name => getComputedStyle(root).getPropertyValue(name).trim(),  // a colour of the page's CSS
  };
})();
const announce = (() => {
  let timer = null, said = "";
  return text => { clearTimeout(timer); timer = setTimeout(() => {
    const live = document.getElementById("live");
    if (live && text !== said) { said = text; live.textContent = text; } }, 300); };
})();
try { if (window.frameElement && document.title) window.frameElement.title = document.title; }
catch (e) { /* not same-origin: the frame keeps Streamlit's title */ }
