// What the tests look for on a page: live markup that came from attacker text, and
// how big the page is.

/** Everything on the page that is live markup from attacker text, as strings. */
export async function liveMarkup(page) {
  return page.evaluate(() => {
    const found = [];
    for (const s of document.querySelectorAll("script")) {
      // Only our own script file may be there.
      if (s.getAttribute("src") !== "/static/pages.js" || s.textContent.trim() !== "") {
        found.push(`script: ${s.outerHTML.slice(0, 200)}`);
      }
    }
    for (const el of document.querySelectorAll("*")) {
      for (const attr of el.getAttributeNames()) {
        if (attr.toLowerCase().startsWith("on")) {
          found.push(`${el.tagName} ${attr}=${el.getAttribute(attr).slice(0, 100)}`);
        }
      }
      for (const attr of ["href", "src", "action", "formaction", "xlink:href", "data"]) {
        const v = el.getAttribute(attr);
        if (v !== null && /^\s*(javascript|data|vbscript):/i.test(v)) {
          found.push(`${el.tagName} ${attr}=${v.slice(0, 100)}`);
        }
      }
    }
    // None of these is in our templates: one here came from attacker text.
    for (const tag of ["img", "iframe", "object", "embed", "svg svg", "foreignObject", "form[action^=j]"]) {
      for (const el of document.querySelectorAll(tag)) {
        found.push(`element ${tag}: ${el.outerHTML.slice(0, 100)}`);
      }
    }
    return found;
  });
}

/** How big the page is: its height, its width beyond the viewport, its text. */
export async function size(page) {
  return page.evaluate(() => ({
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
    text: document.body.innerText.length,
    html: document.documentElement.outerHTML.length,
  }));
}
