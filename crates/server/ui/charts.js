// Strata dashboard: small SVG line and bar charts, drawn by hand (no chart library, so
// nothing to vendor or license). Text goes in through textContent only.
"use strict";

const Charts = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 720;
  const HEIGHT = 200;
  const PAD = { left: 64, right: 12, top: 12, bottom: 28 };
  const COLOURS = ["#0b6bcb", "#d1495b", "#00798c", "#edae49", "#6a4c93", "#1a7f37"];

  function node(name, attrs, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
    if (parent) parent.appendChild(element);
    return element;
  }

  function text(parent, x, y, content, anchor) {
    const element = node("text", { x, y, "text-anchor": anchor || "start" }, parent);
    element.textContent = content;
    return element;
  }

  function canvas(container) {
    container.replaceChildren();
    return node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" }, container);
  }

  function empty(svg, message) {
    const element = text(svg, WIDTH / 2, HEIGHT / 2, message, "middle");
    element.setAttribute("class", "empty");
  }

  function axes(svg, yMax, format) {
    const plotBottom = HEIGHT - PAD.bottom;
    node("line", { x1: PAD.left, y1: plotBottom, x2: WIDTH - PAD.right, y2: plotBottom,
      class: "axis" }, svg);
    for (let i = 0; i <= 4; i++) {
      const y = plotBottom - (i / 4) * (plotBottom - PAD.top);
      node("line", { x1: PAD.left, y1: y, x2: WIDTH - PAD.right, y2: y, class: "axis" }, svg);
      text(svg, PAD.left - 6, y + 4, format((yMax * i) / 4), "end");
    }
  }

  function timeLabel(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit",
      second: "2-digit" });
  }

  function legend(svg, series) {
    series.forEach((s, i) => {
      const x = PAD.left + 8 + i * 110;
      node("rect", { x, y: PAD.top, width: 10, height: 10, fill: COLOURS[i % COLOURS.length] },
        svg);
      text(svg, x + 14, PAD.top + 9, s.name);
    });
  }

  // The top of the value axis: `max` rounded up so that four ticks fall on round values
  // (whole numbers for counts: 1, 2, 2.5 or 5 times a power of ten, times 4).
  function niceMax(max, integer) {
    // Nothing to show: counts still get whole ticks (0 to 4), not 0.25 rounded to 0 or 1.
    if (max <= 0) return integer ? 4 : 1;
    const step = max / 4;
    const power = 10 ** Math.floor(Math.log10(step));
    const nice = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= step);
    const tick = integer ? Math.max(1, Math.ceil(nice)) : nice;
    return tick * 4;
  }

  // series: [{name, points: [[timeMs, value], ...]}]; format: value -> label. Values hold
  // between samples, so lines are drawn as steps.
  function line(container, series, format) {
    const svg = canvas(container);
    const points = series.flatMap((s) => s.points);
    if (points.length === 0) return empty(svg, "no samples yet");
    const xs = points.map((p) => p[0]);
    const xMin = Math.min(...xs);
    const xMax = Math.max(...xs, xMin + 1);
    const yMax = niceMax(Math.max(...points.map((p) => p[1]), 0), false);
    axes(svg, yMax, format);
    const plotBottom = HEIGHT - PAD.bottom;
    const x = (t) => PAD.left + ((t - xMin) / (xMax - xMin)) * (WIDTH - PAD.left - PAD.right);
    const y = (v) => plotBottom - (v / yMax) * (plotBottom - PAD.top);
    series.forEach((s, i) => {
      const path = s.points
        .map((p, j) => (j ? `H${x(p[0])} V${y(p[1])}` : `M${x(p[0])},${y(p[1])}`))
        .join(" ");
      node("path", { d: path, fill: "none", stroke: COLOURS[i % COLOURS.length],
        "stroke-width": 2, "data-series": s.name }, svg);
    });
    text(svg, PAD.left, HEIGHT - 8, timeLabel(xMin));
    text(svg, WIDTH - PAD.right, HEIGHT - 8, timeLabel(xMax), "end");
    if (series.length > 1) legend(svg, series);
  }

  // bars: [{label, value, colour?}] of counts; format: value -> label.
  function bars(container, items, format) {
    const svg = canvas(container);
    if (items.length === 0) return empty(svg, "nothing to show yet");
    const yMax = niceMax(Math.max(...items.map((b) => b.value), 0), true);
    axes(svg, yMax, format);
    const plotBottom = HEIGHT - PAD.bottom;
    const slot = (WIDTH - PAD.left - PAD.right) / items.length;
    const labelEvery = Math.ceil(items.length / 12);
    items.forEach((b, i) => {
      const height = (b.value / yMax) * (plotBottom - PAD.top);
      const x = PAD.left + i * slot + slot * 0.15;
      node("rect", { x, y: plotBottom - height, width: Math.max(slot * 0.7, 1), height,
        fill: b.colour || COLOURS[0], "data-label": b.label, "data-value": b.value }, svg);
      if (i % labelEvery === 0) text(svg, x + slot * 0.35, HEIGHT - 8, b.label, "middle");
    });
  }

  return { line, bars, timeLabel };
})();
