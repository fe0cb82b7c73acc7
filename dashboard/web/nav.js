// The sidebar's page links (dashboard/app.py: sidebar_nav), run in the app's own page by
// st.html: their box becomes a navigation landmark named "App pages" (as Streamlit's own menu
// was) and the link to the page shown gets aria-current="page" (st.page_link marks it only by
// its look). Re-applied whenever the sidebar's content changes, since React may redraw the
// links; __CURRENT__ is the page's url path ("" for the default page, served at "/").
// No "<" directly before a letter or "/" anywhere in this file: st.html's sanitizer (DOMPurify)
// drops a script whose text looks like markup.
(() => {
const W = window, D = document, current = __CURRENT__, box = ".st-key-__KEY__";
function apply() {
  const nav = D.querySelector(box);
  if (!nav) return;
  if (nav.getAttribute("role") !== "navigation") {
    nav.setAttribute("role", "navigation");
    nav.setAttribute("aria-label", "App pages");
  }
  for (const a of nav.querySelectorAll("a[href]")) {
    // st.page_link writes each href as the page's url path, relative: "" for the default page,
    // which a browser takes for the page shown (open Home in a new tab: the same page again)
    if (a.getAttribute("href") === "") a.setAttribute("href", "./");
    const here = new URL(a.href).pathname.split("/").pop() === current;
    if (here && a.getAttribute("aria-current") !== "page") a.setAttribute("aria-current", "page");
    if (!here && a.hasAttribute("aria-current")) a.removeAttribute("aria-current");
  }
}
if (W.__difflabNav) W.__difflabNav.disconnect();
const side = D.querySelector('[data-testid="stSidebar"]') || D.body;
W.__difflabNav = new MutationObserver(apply);
W.__difflabNav.observe(side, {childList: true, subtree: true, attributes: true, attributeFilter: ["href"]});
apply();
// Not the menu, but the one script every page runs: Plotly's off-screen measuring SVG
// (#js-plotly-tester, put on the body once a chart is drawn) reads to a screen reader as an
// unnamed image; it is hidden from the accessibility tree.
function hideTester() {
  const t = D.getElementById("js-plotly-tester");
  if (t && t.getAttribute("aria-hidden") !== "true") t.setAttribute("aria-hidden", "true");
}
if (!W.__difflabTester) {
  W.__difflabTester = new MutationObserver(hideTester);
  W.__difflabTester.observe(D.body, {childList: true});
}
hideTester();
})();
