// @ts-check
/**
 * The page script: draws a view (the blocks of blocks.ts, embedded as JSON
 * by page.ts) with uPlot for line charts and plain canvas for the heatmap and
 * the group bands. On a live page it polls the server for a new view and
 * updates the charts in place (zoom, open sections and the chosen heatmap
 * layer survive an update).
 *
 * Plain JavaScript, because it is inlined into the page as it is; it is
 * type-checked against the DOM and uPlot typings by tsconfig.client.json.
 * Every chart container carries data-* attributes saying what it drew
 * (points per series, markers, cells), which the browser test reads.
 */
(function () {
  /** @typedef {import('./blocks.js').Block} Block */
  /** @typedef {import('./blocks.js').View} View */
  /** @typedef {import('./blocks.js').LineChart} LineChart */
  /** @typedef {import('./blocks.js').LineSeries} LineSeries */
  /** @typedef {import('./blocks.js').Heatmap} Heatmap */
  /** @typedef {import('./blocks.js').GroupBands} GroupBands */
  /** @typedef {import('./blocks.js').Marker} Marker */
  /** @typedef {import('./blocks.js').LiveOptions} LiveOptions */
  /** @typedef {{ element: HTMLElement, update(block: Block): void, destroy(): void }} Drawn */

  const FALLBACK_COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
  const MARKER_COLOR = '#7a1f7a';

  const root = /** @type {HTMLElement} */ (document.getElementById('untie-root'));
  const statusBar = /** @type {HTMLElement} */ (document.getElementById('untie-status'));
  const tip = document.createElement('div');
  tip.className = 'heat-tip';
  document.body.append(tip);

  /** Drawn blocks in document order (sections and grids included), for in-place updates. */
  /** @type {Drawn[]} */
  let drawn = [];
  let shape = '';

  /**
   * @param {string} tag
   * @param {string | null} [text]
   * @param {string} [className]
   */
  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  /** What must match for an update to happen in place: kinds, ids, titles and series labels. */
  /** @param {Block[]} blocks @returns {string} */
  function shapeOf(blocks) {
    return blocks.map((b) => {
      switch (b.kind) {
        case 'section': return `s(${b.title}:${shapeOf(b.blocks)})`;
        case 'grid': return `g(${shapeOf(b.blocks)})`;
        case 'html': return 'h';
        case 'line': return `l${b.id}[${b.series.map((s) => s.label).join('|')}]${b.xLog ? 'X' : ''}${b.yLog ? 'Y' : ''}`;
        case 'heatmap': return `m${b.id}[${b.layers.map((l) => l.name).join('|')}]`;
        case 'bands': return `b${b.id}`;
      }
    }).join(',');
  }

  /** @param {View} view */
  function render(view) {
    for (const d of drawn) d.destroy();
    drawn = [];
    root.replaceChildren(el('h1', view.title));
    for (const b of view.blocks) root.append(draw(b));
    shape = shapeOf(view.blocks);
    document.title = view.title;
  }

  /** @param {View} view */
  function update(view) {
    if (shapeOf(view.blocks) !== shape) {
      render(view);
      return;
    }
    let i = 0;
    /** @param {Block[]} blocks */
    const walk = (blocks) => {
      for (const b of blocks) {
        drawn[i++].update(b);
        if (b.kind === 'section' || b.kind === 'grid') walk(b.blocks);
      }
    };
    walk(view.blocks);
  }

  /** @param {Block} b @returns {HTMLElement} */
  function draw(b) {
    /** @type {Drawn} */
    let d;
    const index = drawn.length;
    drawn.push(/** @type {Drawn} */ (/** @type {unknown} */ (null))); // keep document order: children come after their parent
    switch (b.kind) {
      case 'section': d = section(b); break;
      case 'grid': d = grid(b); break;
      case 'html': d = html(b.html); break;
      case 'line': d = lineChart(b); break;
      case 'heatmap': d = heatmap(b); break;
      case 'bands': d = bands(b); break;
    }
    drawn[index] = d;
    return d.element;
  }

  /** @param {import('./blocks.js').Section} b @returns {Drawn} */
  function section(b) {
    const heading = el(`h${b.level ?? 2}`, b.title);
    let element;
    if (b.collapsed !== undefined) {
      element = el('details');
      if (!b.collapsed) /** @type {HTMLDetailsElement} */ (element).open = true;
      const summary = el('summary');
      summary.append(heading);
      heading.style.display = 'inline';
      element.append(summary);
    } else {
      element = el('section');
      element.append(heading);
    }
    for (const c of b.blocks) element.append(draw(c));
    return { element, update() {}, destroy() {} };
  }

  /** @param {import('./blocks.js').Grid} b @returns {Drawn} */
  function grid(b) {
    const element = el('div', null, 'grid');
    for (const c of b.blocks) element.append(draw(c));
    return { element, update() {}, destroy() {} };
  }

  /** @param {string} content @returns {Drawn} */
  function html(content) {
    const element = el('div');
    element.innerHTML = content;
    let current = content;
    return {
      element,
      update(b) {
        if (b.kind === 'html' && b.html !== current) element.innerHTML = current = b.html;
      },
      destroy() {},
    };
  }

  /** A chart's frame: a box with a title, holding the drawing. */
  /** @param {string} id @param {string} kind @param {string} title */
  function chartBox(id, kind, title) {
    const box = el('div', null, 'chart');
    box.dataset.chart = id;
    box.dataset.kind = kind;
    box.append(el('div', title, 'chart-title'));
    return box;
  }

  /** Short number label: 1e-3, 0.25, 1200, 3.2, 8e-4 (as html.ts formatNumber). */
  /** @param {number} v */
  function fmt(v) {
    if (v === 0) return '0';
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) {
      const e = Math.floor(Math.log10(a));
      const m = v / Math.pow(10, e);
      return `${+m.toPrecision(2)}e${e}`;
    }
    return String(+v.toPrecision(4));
  }

  /**
   * Tick labels; uPlot passes null for the ticks a log axis leaves unlabelled.
   * @param {uPlot} _u @param {(number | null)[]} vals
   */
  function axisLabels(_u, vals) {
    return vals.map((v) => (v === null || v === undefined ? '' : fmt(v)));
  }

  /**
   * uPlot wants one shared x array: each series is sorted and joined on the
   * union of all x values (a series has no value at another's x; lines span
   * those gaps). Points a log axis cannot show are dropped.
   * @param {LineChart} spec
   * @returns {{ data: uPlot.AlignedData, counts: Record<string, number> }}
   */
  function align(spec) {
    /** @type {uPlot.AlignedData[]} */
    const tables = [];
    /** @type {Record<string, number>} */
    const counts = {};
    for (const s of spec.series) {
      /** @type {[number, number][]} */
      const pts = [];
      for (let i = 0; i < s.x.length; i++) {
        const x = s.x[i], y = s.y[i];
        if (!Number.isFinite(x) || (spec.xLog && x <= 0)) continue;
        if (y === null || !Number.isFinite(y) || (spec.yLog && y <= 0)) continue;
        pts.push([x, y]);
      }
      pts.sort((p, q) => p[0] - q[0]);
      /** @type {number[]} */ const xs = [];
      /** @type {number[]} */ const ys = [];
      for (const [x, y] of pts) {
        if (xs.length > 0 && xs[xs.length - 1] === x) ys[ys.length - 1] = y; // the later record wins
        else { xs.push(x); ys.push(y); }
      }
      counts[s.label] = xs.length;
      tables.push([xs, ys]);
    }
    if (tables.length === 0) return { data: [[]], counts };
    return { data: tables.length === 1 ? tables[0] : uPlot.join(tables), counts };
  }

  /**
   * @param {LineChart} spec
   * @param {'x' | 'y'} axis
   * @returns {uPlot.Scale.Range}
   */
  function rangeOf(spec, axis) {
    const fixed = axis === 'x' ? spec.xRange : spec.yRange;
    if (fixed) return [fixed[0], fixed[1]];
    const log = axis === 'x' ? spec.xLog : spec.yLog;
    const extra = axis === 'y' ? (spec.refLines ?? []).map((r) => r.y) : [];
    return (_u, min, max) => {
      for (const v of extra) {
        if (!Number.isFinite(v) || (log && v <= 0)) continue;
        min = min === null || min === undefined ? v : Math.min(min, v);
        max = max === null || max === undefined ? v : Math.max(max, v);
      }
      if (min === null || max === null || min === undefined || max === undefined) return log ? [1, 10] : [0, 1];
      if (log) {
        const r = uPlot.rangeLog(min, max, 10, false);
        return [r[0] ?? min, r[1] ?? max];
      }
      if (axis === 'x') return [min, max === min ? min + 1 : max];
      const r = uPlot.rangeNum(min, max, 0.08, true);
      return [r[0] ?? min, r[1] ?? max];
    };
  }

  /**
   * Reference lines and markers, drawn over the series.
   * @param {uPlot} u
   * @param {LineChart} spec
   */
  function drawOverlay(u, spec) {
    const ctx = u.ctx, { left, top, width, height } = u.bbox, px = uPlot.pxRatio;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    for (const r of spec.refLines ?? []) {
      const y = u.valToPos(r.y, 'y', true);
      if (!(y >= top && y <= top + height)) continue;
      ctx.strokeStyle = r.color ?? '#777';
      ctx.lineWidth = px;
      ctx.setLineDash([3 * px, 3 * px]);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
      ctx.fillStyle = r.color ?? '#555';
      ctx.textAlign = 'right';
      ctx.fillText(r.label, left + width - 4 * px, y - 3 * px);
    }
    drawMarkers(ctx, spec.markers ?? [], (x) => u.valToPos(x, 'x', true), left, top, width, height, px);
    ctx.restore();
  }

  /**
   * Vertical lines with their labels near the top, in up to `rows` rows so
   * that labels of close events do not overlap (the heatmap keeps four rows
   * of room above its cells; a line chart's labels may use six, or as many
   * as fit in the top 40% of a taller plot: a study's many seeds and events
   * crowd six).
   * @param {CanvasRenderingContext2D} ctx
   * @param {Marker[]} markers
   * @param {(x: number) => number} toPx
   * @param {number} left @param {number} top @param {number} width @param {number} height @param {number} px
   * @param {number} [rows]
   */
  function drawMarkers(ctx, markers, toPx, left, top, width, height, px, rows) {
    rows ??= Math.max(6, Math.floor((0.4 * height) / (13 * px)));
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    // Each label takes the first row where it clears every label already there
    // (left to right), else the row whose labels end soonest (moved right of them where it fits).
    const rowRight = new Array(rows).fill(-Infinity);
    const placed = markers.map((m) => {
      const x = toPx(m.x);
      const w = ctx.measureText(m.label).width;
      const right = x + 4 * px + w > left + width; // label on the left of the line near the right edge
      return { m, x, w, lx: right ? x - 4 * px - w : x + 4 * px };
    }).filter((p) => p.x >= left - 1 && p.x <= left + width + 1).sort((a, b) => a.lx - b.lx);
    for (const { m, x } of placed) {
      ctx.strokeStyle = m.color ?? MARKER_COLOR;
      ctx.lineWidth = 1.5 * px;
      ctx.setLineDash([5 * px, 3 * px]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    }
    // Labels after every line, so that no line crosses a label's backing.
    for (const p of placed) {
      const { m, w } = p;
      if (m.label === '') continue; // a further place of an event labelled at its first
      let lx = p.lx;
      let row = rowRight.findIndex((r) => lx >= r);
      if (row < 0) {
        // Every row is taken here: the row that frees up first, the label moved right to clear it
        // while it still fits in the plot (the line's colour ties it to its line), else over it.
        row = rowRight.indexOf(Math.min(...rowRight));
        if (rowRight[row] + w <= left + width) lx = rowRight[row];
      }
      rowRight[row] = lx + w + 6 * px;
      const ly = top + (13 + 13 * row) * px;
      ctx.fillStyle = 'rgba(255,255,255,0.8)';
      ctx.fillRect(lx - 2 * px, ly - 10 * px, w + 4 * px, 13 * px);
      ctx.fillStyle = m.color ?? MARKER_COLOR;
      ctx.textAlign = 'left';
      ctx.fillText(m.label, lx, ly);
    }
  }

  /**
   * Dots big enough to see where a series has one or two points (a short
   * run's single evaluation), else the usual size.
   * @param {LineSeries} s @param {number | undefined} n
   */
  const pointSize = (s, n) => (n !== undefined && n <= 2 ? 11 : s.noLine ? 7 : 5);

  /** @param {LineChart} spec @returns {Drawn} */
  function lineChart(spec) {
    const box = chartBox(spec.id, 'line', spec.title);
    const holder = el('div');
    box.append(holder);
    /** @type {uPlot | null} */
    let plot = null;
    let current = spec;

    /** @param {Record<string, number>} counts */
    const describe = (counts) => {
      box.dataset.points = JSON.stringify(counts);
      box.dataset.pointSizes = JSON.stringify(Object.fromEntries(current.series.map((s) => [s.label, pointSize(s, counts[s.label])])));
      box.dataset.markers = String((current.markers ?? []).length);
      box.dataset.markerLabels = JSON.stringify((current.markers ?? []).map((m) => m.label).filter((l) => l !== ''));
    };

    const build = () => {
      plot?.destroy();
      plot = null;
      holder.replaceChildren();
      const { data, counts } = align(current);
      describe(counts);
      if (Object.values(counts).every((n) => n === 0)) {
        holder.append(el('div', 'no data yet', 'chart-empty'));
        holder.style.width = `${current.width ?? 560}px`;
        return;
      }
      const width = Math.min(current.width ?? 560, Math.max(320, root.clientWidth - 20));
      /** @type {uPlot.Options} */
      const opts = {
        width,
        height: current.height ?? 300,
        scales: {
          x: { time: false, distr: current.xLog ? 3 : 1, range: rangeOf(current, 'x') },
          y: { distr: current.yLog ? 3 : 1, range: rangeOf(current, 'y') },
        },
        axes: [
          { label: current.xLabel, labelSize: 18, size: 36, values: axisLabels, ...(current.xTicks ? { splits: () => /** @type {number[]} */ (current.xTicks), filter: (_u, splits) => splits } : {}) },
          { label: current.yLabel, labelSize: 18, size: (_u, vals) => 22 + 7 * Math.max(2, ...(vals ?? []).map((v) => String(v).length)), values: axisLabels },
        ],
        series: [
          { label: current.xLabel, value: (_u, v) => (v === null || v === undefined ? '—' : fmt(v)) },
          ...current.series.map((s, i) => {
            const color = s.color ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length];
            const showPoints = s.points ?? counts[s.label] <= 60;
            /** @type {uPlot.Series} */
            const series = {
              label: s.label,
              stroke: color,
              width: s.noLine ? 0 : (s.width ?? 1.5),
              spanGaps: true,
              points: { show: showPoints || s.noLine === true, size: pointSize(s, counts[s.label]), fill: color, stroke: color },
              value: (_u, v) => (v === null || v === undefined ? '—' : fmt(v)),
            };
            if (s.dash) series.dash = [6, 4];
            if (s.noLine) series.paths = () => null;
            return series;
          }),
        ],
        cursor: { drag: { x: true, y: false } },
        hooks: { draw: [(u) => drawOverlay(u, current)] },
      };
      plot = new uPlot(opts, data, holder);
    };
    build();

    return {
      element: box,
      update(b) {
        if (b.kind !== 'line') return;
        const sameFrame = JSON.stringify([b.xLog, b.yLog, b.xRange, b.yRange, b.xTicks, b.refLines, b.series.map((s) => [s.label, s.color, s.dash, s.noLine])])
          === JSON.stringify([current.xLog, current.yLog, current.xRange, current.yRange, current.xTicks, current.refLines, current.series.map((s) => [s.label, s.color, s.dash, s.noLine])]);
        current = b;
        if (!plot || !sameFrame) {
          build();
          return;
        }
        const { data, counts } = align(current);
        describe(counts);
        if (Object.values(counts).every((n) => n === 0)) {
          build();
          return;
        }
        // Keep a zoomed x range; otherwise follow the data.
        const zoomed = plot.select.width > 0 || plot.scales.x.min !== plot.data[0][0];
        const xMin = plot.scales.x.min, xMax = plot.scales.x.max;
        plot.setData(data, true);
        if (zoomed && xMin !== undefined && xMax !== undefined && xMin !== null && xMax !== null && plot.data[0].length > 0 && xMin > /** @type {number} */ (plot.data[0][0])) {
          plot.setScale('x', { min: xMin, max: xMax });
        }
      },
      destroy() {
        plot?.destroy();
      },
    };
  }

  /** Nice tick positions on [lo, hi]. @param {number} lo @param {number} hi @param {number} count */
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  /** A canvas sized in CSS pixels, drawn at the screen's pixel ratio. @param {number} w @param {number} h */
  function hiDpiCanvas(w, h) {
    const canvas = document.createElement('canvas');
    const px = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * px);
    canvas.height = Math.round(h * px);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    ctx.scale(px, px);
    return { canvas, ctx };
  }

  /** @param {[number, number, number]} a @param {[number, number, number]} b @param {number} t */
  function mix(a, b, t) {
    const c = [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * Math.max(0, Math.min(1, t))));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  /**
   * Diverging colours that change hue at the pivot (rho): reds below it,
   * blues above, so "below rho" reads at a glance.
   * @param {Heatmap} spec @param {[number, number]} range @param {number} v
   */
  function heatColor(spec, range, v) {
    const [lo, hi] = range;
    const p = spec.pivot?.value ?? (lo + hi) / 2;
    if (v < p) return mix([253, 219, 199], [178, 24, 43], (p - v) / Math.max(1e-12, p - lo));
    return mix([209, 229, 240], [33, 102, 172], (v - p) / Math.max(1e-12, hi - p));
  }

  /**
   * Shared frame of the heatmap and the bands: row labels on the left, an x
   * axis below, markers over the cells, a tooltip on hover.
   * @param {{ rows: string[], x0: number, x1: number, xLabel: string, width: number, markers: Marker[],
   *   cell(ctx: CanvasRenderingContext2D, sx: (x: number) => number, top: number, rowH: number, plotW: number): void,
   *   hover(row: number, x: number): string | null }} o
   */
  function gridCanvas(o) {
    const labelW = 64, top = 4 + 13 * Math.min(4, Math.max(1, o.markers.length)), rowH = Math.max(10, Math.min(24, Math.floor(240 / Math.max(1, o.rows.length))));
    const plotW = o.width - labelW - 12, h = top + rowH * o.rows.length + 38;
    const { canvas, ctx } = hiDpiCanvas(o.width, h);
    const sx = (/** @type {number} */ x) => labelW + ((x - o.x0) / Math.max(1e-12, o.x1 - o.x0)) * plotW;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#f4f4f4';
    ctx.fillRect(labelW, top, plotW, rowH * o.rows.length);
    o.cell(ctx, sx, top, rowH, plotW);
    ctx.fillStyle = '#222';
    ctx.textAlign = 'right';
    o.rows.forEach((r, i) => ctx.fillText(r, labelW - 6, top + i * rowH + rowH / 2 + 4));
    ctx.strokeStyle = '#444';
    ctx.lineWidth = 1;
    ctx.strokeRect(labelW, top, plotW, rowH * o.rows.length);
    ctx.textAlign = 'center';
    const yAxis = top + rowH * o.rows.length;
    for (const t of ticks(o.x0, o.x1, 6)) {
      const x = sx(t);
      ctx.beginPath(); ctx.moveTo(x, yAxis); ctx.lineTo(x, yAxis + 4); ctx.stroke();
      ctx.fillText(fmt(t), x, yAxis + 16);
    }
    ctx.fillText(o.xLabel, labelW + plotW / 2, yAxis + 32);
    drawMarkers(ctx, o.markers, sx, labelW, top - 13 * Math.min(4, Math.max(1, o.markers.length)), plotW, 13 * Math.min(4, Math.max(1, o.markers.length)) + rowH * o.rows.length, 1, 4);
    canvas.addEventListener('mousemove', (ev) => {
      const r = canvas.getBoundingClientRect();
      const cx = ev.clientX - r.left, cy = ev.clientY - r.top;
      const row = Math.floor((cy - top) / rowH);
      const text = cx >= labelW && cx <= labelW + plotW && row >= 0 && row < o.rows.length
        ? o.hover(row, o.x0 + ((cx - labelW) / plotW) * (o.x1 - o.x0)) : null;
      if (text === null) { tip.style.display = 'none'; return; }
      tip.textContent = text;
      tip.style.display = 'block';
      tip.style.left = `${ev.clientX + 12}px`;
      tip.style.top = `${ev.clientY + 12}px`;
    });
    canvas.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    return canvas;
  }

  /** The column holding x: the last column starting at or before it. @param {number[]} columns @param {number} x */
  function columnAt(columns, x) {
    let lo = 0, hi = columns.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (columns[mid] <= x) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  /** @param {Heatmap} spec @returns {Drawn} */
  function heatmap(spec) {
    const box = chartBox(spec.id, 'heatmap', spec.title);
    const controls = el('div', null, 'chart-controls');
    const select = /** @type {HTMLSelectElement} */ (el('select'));
    select.setAttribute('aria-label', 'values shown');
    controls.append('values: ', select);
    const body = el('div');
    box.append(controls, body);
    let current = spec;

    const layerOf = () => current.layers.find((l) => l.name === select.value) ?? current.layers[0];
    const fillSelect = () => {
      const chosen = select.value;
      select.replaceChildren(...current.layers.map((l) => {
        const o = /** @type {HTMLOptionElement} */ (el('option', l.name));
        o.value = l.name;
        return o;
      }));
      if (current.layers.some((l) => l.name === chosen)) select.value = chosen;
      controls.style.display = current.layers.length > 1 ? '' : 'none';
    };

    /**
     * The colour range: the spec's ends where given, else the shown
     * values' (so each tensor's own spread is visible), always with the pivot inside.
     * @param {(number | null)[][]} values @returns {[number, number]}
     */
    const rangeOf = (values) => {
      let lo = Infinity, hi = -Infinity;
      for (const row of values) for (const v of row) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (current.pivot) { lo = Math.min(lo, current.pivot.value); hi = Math.max(hi, current.pivot.value); }
      lo = current.range?.[0] ?? lo;
      hi = current.range?.[1] ?? hi;
      if (!(hi > lo)) { lo = Number.isFinite(lo) ? lo - 1 : 0; hi = lo + 2; }
      return [lo, hi];
    };

    const paint = () => {
      const layer = layerOf();
      const cols = current.columns;
      const end = (/** @type {number} */ j) => (j + 1 < cols.length ? cols[j + 1] : current.xEnd);
      let cells = 0;
      for (const row of layer?.values ?? []) for (const v of row) if (v !== null) cells++;
      box.dataset.cells = String(cells);
      box.dataset.layer = layer?.name ?? '';
      box.dataset.markers = String((current.markers ?? []).length);
      box.dataset.markerLabels = JSON.stringify((current.markers ?? []).map((m) => m.label));
      if (!layer || cols.length === 0) {
        body.replaceChildren(el('div', 'no checks yet', 'chart-empty'));
        return;
      }
      const width = Math.min(current.width ?? 1000, Math.max(360, root.clientWidth - 20));
      const range = rangeOf(layer.values);
      const canvas = gridCanvas({
        rows: current.rows, x0: Math.min(0, cols[0]), x1: current.xEnd, xLabel: current.xLabel, width, markers: current.markers ?? [],
        cell(ctx, sx, top, rowH) {
          layer.values.forEach((row, i) => row.forEach((v, j) => {
            if (v === null) return;
            ctx.fillStyle = heatColor(current, range, v);
            const a = sx(cols[j]), b = sx(end(j));
            ctx.fillRect(a, top + i * rowH, Math.max(1, b - a + 0.5), rowH - 1);
          }));
        },
        hover(row, x) {
          const j = columnAt(cols, x);
          if (j < 0 || x >= end(j)) return null;
          const v = layer.values[row]?.[j];
          return `${current.xLabel} ${fmt(cols[j])} · ${current.rowLabel} ${current.rows[row]} · ${v === null || v === undefined ? 'not measured' : v.toFixed(4)}`;
        },
      });
      body.replaceChildren(canvas, colorBar(range));
    };

    /** The colour scale, with the pivot (rho) marked above it. @param {[number, number]} range */
    const colorBar = (range) => {
      const w = 300, h = 46, x0 = 24, barW = w - 2 * x0;
      const { canvas, ctx } = hiDpiCanvas(w, h);
      const [lo, hi] = range;
      for (let i = 0; i < barW; i++) {
        ctx.fillStyle = heatColor(current, range, lo + ((hi - lo) * i) / (barW - 1));
        ctx.fillRect(x0 + i, 16, 1.5, 12);
      }
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = '#222';
      ctx.textAlign = 'center';
      ctx.fillText(fmt(+lo.toPrecision(3)), x0, 42);
      ctx.fillText(fmt(+hi.toPrecision(3)), x0 + barW, 42);
      if (current.pivot) {
        const x = x0 + ((current.pivot.value - lo) / (hi - lo)) * (barW - 1);
        ctx.strokeStyle = '#000';
        ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(x, 13); ctx.lineTo(x, 31); ctx.stroke();
        ctx.fillText(current.pivot.label, x, 10);
      }
      canvas.dataset.pivot = current.pivot ? String(current.pivot.value) : '';
      canvas.className = 'color-bar';
      return canvas;
    };

    select.addEventListener('change', paint);
    fillSelect();
    paint();
    return {
      element: box,
      update(b) {
        if (b.kind !== 'heatmap') return;
        current = b;
        fillSelect();
        paint();
      },
      destroy() {},
    };
  }

  /** @param {GroupBands} spec @returns {Drawn} */
  function bands(spec) {
    const box = chartBox(spec.id, 'bands', spec.title);
    const body = el('div');
    box.append(body);
    let current = spec;
    const paint = () => {
      box.dataset.spans = String(current.spans.length);
      box.dataset.markers = String((current.markers ?? []).length);
      if (current.spans.length === 0) {
        body.replaceChildren(el('div', 'no steps yet', 'chart-empty'));
        return;
      }
      const x1 = current.spans[current.spans.length - 1].to;
      const width = Math.min(current.width ?? 1000, Math.max(360, root.clientWidth - 20));
      const spanAt = (/** @type {number} */ x) => current.spans.find((s) => x >= s.from && x < s.to) ?? null;
      body.replaceChildren(gridCanvas({
        rows: current.rows, x0: 0, x1, xLabel: current.xLabel, width, markers: current.markers ?? [],
        cell(ctx, sx, top, rowH) {
          for (const s of current.spans) {
            const a = sx(s.from), b = sx(s.to);
            const sizes = new Map();
            for (const g of s.groupOf) sizes.set(g, (sizes.get(g) ?? 0) + 1);
            s.groupOf.forEach((g, i) => {
              // tied groups in palette colours (by their first member), untied layers grey
              ctx.fillStyle = sizes.get(g) > 1 ? FALLBACK_COLORS[g % FALLBACK_COLORS.length] : '#c8c8c8';
              ctx.fillRect(a, top + i * rowH, Math.max(1, b - a), rowH - 1);
            });
          }
        },
        hover(row, x) {
          const s = spanAt(x);
          return s ? `${current.xLabel} ${fmt(s.from)}–${fmt(s.to)} · layer ${current.rows[row]} in group ${s.groupOf[row]} · ${s.description}` : null;
        },
      }));
    };
    paint();
    return {
      element: box,
      update(b) {
        if (b.kind !== 'bands') return;
        current = b;
        paint();
      },
      destroy() {},
    };
  }

  // ---- start: draw the embedded view, then follow the server if live
  const viewEl = document.getElementById('untie-view');
  /** @type {View} */
  const first = JSON.parse(viewEl?.textContent ?? '{"title":"","blocks":[]}');
  render(first);
  const liveEl = document.getElementById('untie-live');
  if (liveEl) {
    /** @type {LiveOptions} */
    const live = JSON.parse(liveEl.textContent ?? '{}');
    let version = live.version;
    let lastOk = Date.now();
    const say = (/** @type {string} */ text, /** @type {boolean} */ stale) => {
      statusBar.textContent = text;
      statusBar.className = stale ? 'stale' : '';
    };
    say('live: following the run folder', false);
    const poll = async () => {
      try {
        const sep = live.viewUrl.includes('?') ? '&' : '?';
        const res = await fetch(`${live.viewUrl}${sep}since=${encodeURIComponent(version)}`, { cache: 'no-store' });
        if (res.status === 200) {
          const body = /** @type {{ version: string, view: View }} */ (await res.json());
          version = body.version;
          update(body.view);
        } else if (res.status !== 204) {
          throw new Error(`HTTP ${res.status}`);
        }
        lastOk = Date.now();
        say(`live: checked ${new Date(lastOk).toLocaleTimeString()}`, false);
      } catch (err) {
        say(`live: cannot reach the server since ${new Date(lastOk).toLocaleTimeString()} (stopped?); retrying (${String(err)})`, true);
      }
      setTimeout(poll, live.intervalMs);
    };
    setTimeout(poll, live.intervalMs);
  }
})();
