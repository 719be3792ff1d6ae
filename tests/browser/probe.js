// Measures torchmagic reports in a rendered page; evaluated by Playwright.
// Returns plain data; the Python tests decide what passes.
(root) => {
  // -- colours ------------------------------------------------------------
  const ctx = document.createElement("canvas").getContext("2d");
  function parse(c) {
    // Normalise any CSS colour through the canvas, then read rgba back.
    if (!c || c === "none" || c === "transparent") return [0, 0, 0, 0];
    if (c.startsWith("url(")) return null;
    const m = c.match(/^rgba?\(([^)]+)\)$/);
    let parts;
    if (m) {
      parts = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    } else {
      ctx.clearRect(0, 0, 1, 1);
      ctx.fillStyle = "rgba(0,0,0,0)";
      ctx.fillStyle = c;
      ctx.fillRect(0, 0, 1, 1);
      const d = ctx.getImageData(0, 0, 1, 1).data;
      parts = [d[0], d[1], d[2], d[3] / 255];
    }
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  }
  function over(top, bottom) {
    // Alpha-composite `top` over an opaque `bottom`.
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  }
  function lum(c) {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  }
  function contrast(a, b) {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  }
  function pageBackground() {
    for (const el of [document.body, document.documentElement]) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c[3] > 0) return over(c, [255, 255, 255, 1]);
    }
    return [255, 255, 255, 1]; // the canvas
  }
  function htmlBackground(el) {
    // Composite background colours from the element up to the page.
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let bg = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : pageBackground();
    while (layers.length) bg = over(layers.pop(), bg);
    return bg;
  }
  function svgBackground(textEl) {
    // The topmost filled shape under the text's centre, else the HTML behind the svg.
    const svg = textEl.ownerSVGElement;
    const r = textEl.getBoundingClientRect();
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    let base = htmlBackground(svg);
    const shapes = [...svg.querySelectorAll("rect, ellipse, circle, polygon, path")].filter((s) => {
      const b = s.getBoundingClientRect();
      return b.width > 0 && b.height > 0 && cx >= b.left && cx <= b.right && cy >= b.top && cy <= b.bottom &&
        (s.compareDocumentPosition(textEl) & Node.DOCUMENT_POSITION_FOLLOWING);
    });
    for (const s of shapes) {
      const st = getComputedStyle(s);
      const fill = parse(st.fill);
      if (!fill) continue;
      const alpha = fill[3] * Number(st.fillOpacity || 1) * Number(st.opacity || 1);
      if (alpha > 0) base = over([fill[0], fill[1], fill[2], alpha], base);
    }
    return base;
  }
  function visible(el) {
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const st = getComputedStyle(e);
      if (st.display === "none" || st.visibility === "hidden" || Number(st.opacity) === 0) return false;
    }
    return true;
  }
  const rect = (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height };
  };

  // -- text ----------------------------------------------------------------
  function textSamples(report) {
    const out = [];
    const walker = document.createTreeWalker(report, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || seen.has(el) || !n.nodeValue.trim()) continue;
      if (el.closest("style, script, title, desc")) continue;
      seen.add(el);
      if (!visible(el)) continue;
      const st = getComputedStyle(el);
      const inSvg = el instanceof SVGElement;
      const fg = parse(inSvg ? st.fill : st.color);
      if (!fg) continue;
      const bg = inSvg ? svgBackground(el) : htmlBackground(el);
      const alpha = fg[3] * Number(st.opacity || 1);
      const fgOn = over([fg[0], fg[1], fg[2], alpha], bg);
      const size = parseFloat(st.fontSize);
      const bold = Number(st.fontWeight) >= 700 || st.fontWeight === "bold";
      out.push({
        text: n.nodeValue.trim().slice(0, 40),
        tag: el.tagName.toLowerCase(),
        svg: inSvg,
        ratio: contrast(fgOn, bg),
        size,
        large: size >= 24 || (bold && size >= 18.66),
        fg: st.color, fill: st.fill, bg: "rgb(" + bg.slice(0, 3).map(Math.round).join(",") + ")",
      });
    }
    return out;
  }

  // -- structure -----------------------------------------------------------
  function tables(report) {
    return [...report.querySelectorAll("table")].filter(visible).map((t) => ({
      rows: [...t.querySelectorAll("tr")].filter((tr) => tr.querySelector("td") && tr.textContent.trim()).length,
      box: rect(t),
      cls: t.className,
    }));
  }
  function svgs(report) {
    return [...report.querySelectorAll("svg")].filter((s) => !s.parentElement.closest("svg")).map((s) => {
      const box = rect(s);
      // A node: an element marked as one, or a group holding a box (its own <rect>).
      const nodes = [...s.querySelectorAll(".node, .tm-node, [data-node], g:has(> rect)")].map((g) => {
        const shape = g.matches("rect") ? g : g.querySelector(":scope > rect, rect, ellipse, polygon");
        const label = [...g.querySelectorAll("text")];
        const title = g.querySelector(":scope > title");
        return {
          id: g.getAttribute("id") || g.getAttribute("data-node") ||
            (title ? title.textContent.trim().split("\n")[0].slice(0, 40) : "") ||
            label.map((t) => t.textContent.trim()).join(" ").slice(0, 40),
          box: shape ? rect(shape) : rect(g),
          labels: label.map((t) => ({ text: t.textContent.trim().slice(0, 40), box: rect(t) })),
        };
      });
      return { box, nodes, texts: s.querySelectorAll("text").length };
    });
  }
  function images(report) {
    return [...report.querySelectorAll("img")].map((i) => ({
      ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight, box: rect(i),
    }));
  }

  function spills(report) {
    // Text boxes whose content runs out of them (a scroll box scrolls on purpose and is left alone).
    const out = [];
    for (const el of report.querySelectorAll("td, th, p, li, summary, .tm-title, .tm-badge")) {
      const st = getComputedStyle(el);
      if (st.overflowX !== "visible" || !visible(el) || el.clientWidth <= 0) continue;
      if (el.scrollWidth > el.clientWidth + 1) {
        out.push({ text: el.innerText.trim().slice(0, 40), over: el.scrollWidth - el.clientWidth });
      }
    }
    return out;
  }
  function glyphs(report) {
    // Whether the report's font has CJK glyphs: missing ones all draw as the same empty box.
    const st = getComputedStyle(report);
    const c = document.createElement("canvas").getContext("2d");
    c.font = `${st.fontSize} ${st.fontFamily}`;
    const w = (t) => c.measureText(t).width;
    return { cjk: w("张量形状") !== w("\u{10FFFD}\u{10FFFD}\u{10FFFD}\u{10FFFD}"), font: st.fontFamily };
  }

  const scope = root ? document.querySelector(root) : document;
  if (!scope) return { found: false, reports: [] };
  const reports = [...scope.querySelectorAll(".tm")].filter((r) => !r.parentElement.closest(".tm"));
  return {
    found: true,
    page_bg: "rgb(" + pageBackground().slice(0, 3).join(",") + ")",
    page_lum: lum(pageBackground()),
    reports: reports.map((r) => ({
      cls: r.className,
      visible: visible(r),
      box: rect(r),
      text: r.innerText.trim().slice(0, 200),
      texts: textSamples(r),
      tables: tables(r),
      svgs: svgs(r),
      images: images(r),
      spills: spills(r),
      glyphs: glyphs(r),
    })),
  };
}
