// Shoal's fleet dashboard. Every few seconds it reads the tracker's
// GET ../api/fleet (10 s buckets of what the peers report, per label set)
// and draws it with uPlot: the fleet's offload, origin egress, P95
// start-up, rebuffering per hour watched, rare-chunk scarcity and peers,
// for the label sets the selectors pick, and the cohorts side by side.
//
// The admin token comes from the URL fragment (#token=…), which browsers
// never send to a server, and goes out only as Authorization: Bearer; the
// page then keeps it in the tab's session storage, out of the address bar.
// Fragment options: refresh=SECONDS (default 5); report=/same-origin/path,
// where the page POSTs what it drew after each update (the end-to-end test
// reads it).
'use strict';
(function () {
  const DIMS = ['tenant', 'region', 'network', 'device', 'cohort'];
  const ALL = '*';
  const THRESHOLD_COLOR = '#d62728';
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

  const frag = new URLSearchParams(location.hash.slice(1));
  const token = takeToken();
  const reportPath = sameOriginPath(frag.get('report'));
  const refreshS = clamp(Number(frag.get('refresh')) || 5, 1, 300);

  const errors = [];
  window.addEventListener('error', (e) => errors.push('script error: ' + e.message));
  document.addEventListener('securitypolicyviolation', (e) =>
    errors.push('blocked by the content security policy: ' + e.violatedDirective + ' ' + e.blockedURI));

  // Value and axis formats, one per unit.
  const fmt = {
    pct: (v) => v == null ? '–' : (v * 100).toFixed(v < 0.1 ? 1 : 0) + ' %',
    rate: (v) => v == null ? '–' : si(v) + 'B/s',
    secs: (v) => v == null ? '–' : v < 1 ? Math.round(v * 1000) + ' ms' : v.toFixed(v < 10 ? 2 : 1) + ' s',
    perHour: (v) => v == null ? '–' : v.toFixed(v < 10 ? 1 : 0) + ' s/h',
    count: (v) => v == null ? '–' : String(Math.round(v)),
    bytes: (v) => v == null ? '–' : si(v) + 'B',
  };
  const axis = {
    pct: (v) => Math.round(v * 100) + ' %',
    rate: (v) => si(v, true) + 'B/s',
    secs: (v) => (+v.toFixed(3)) + ' s',
    perHour: (v) => (+v.toFixed(1)) + ' s/h',
    count: (v) => Number.isInteger(v) ? String(v) : '',
  };

  // The six fleet charts. thr picks the alert threshold from the API's
  // "thresholds"; bad says whether a value breaches it.
  const CHARTS = [
    {id: 'offload', title: 'Offload', hint: 'bytes from peers ÷ all bytes', unit: 'pct', color: PALETTE[0],
      get: (d) => d.offload, thr: (t) => t.offload_min, bad: (v, t) => v < t, fixed: [0, 1]},
    {id: 'egress', title: 'Origin egress', hint: 'bytes/s the peers fetched from the origin', unit: 'rate', color: PALETTE[1],
      get: (d) => d.egress},
    {id: 'startup', title: 'P95 start-up', hint: 'request to first segment, 95th percentile', unit: 'secs', color: PALETTE[3],
      get: (d) => d.startup, thr: (t) => t.startup_p95_max_s, bad: (v, t) => v > t},
    {id: 'rebuffer', title: 'Rebuffering', hint: 'seconds stalled per hour watched', unit: 'perHour', color: PALETTE[4],
      get: (d) => d.rebuffer, thr: (t) => t.rebuffer_s_per_hour_max, bad: (v, t) => v > t},
    {id: 'scarcity', title: 'Rare-chunk scarcity', hint: 'chunks missing with no peer holding them ÷ chunks', unit: 'pct', color: PALETTE[6],
      get: (d) => d.scarcity, thr: (t) => t.scarcity_max, bad: (v, t) => v > t},
    {id: 'peers', title: 'Peers', hint: 'peers reporting', unit: 'count', color: PALETTE[2],
      get: (d) => d.peers},
  ];
  // The A/B panel: one line per cohort, on the same axes.
  const AB_CHARTS = [CHARTS[0], CHARTS[2]].map((c) => Object.assign({}, c, {id: 'ab-' + c.id, title: c.title + ' by cohort'}));

  const state = {fleet: null, sel: {}, range: 3600, win: 60, charts: {}, loads: 0};
  for (const d of DIMS) state.sel[d] = ALL;

  // ---- data ----

  // filter returns the series whose labels match every selector but skip.
  function filter(series, skip) {
    return series.filter((s) => DIMS.every((d) => d === skip || state.sel[d] === ALL || label(s, d) === state.sel[d]));
  }

  function label(s, d) { return (s.labels && s.labels[d]) || ''; }

  // timeline is the bucket starts to draw: the selected range up to the
  // last complete bucket, starting no earlier than the first data.
  function timeline(fleet) {
    const b = fleet.bucket_s > 0 ? fleet.bucket_s : 10;
    const end = Math.floor(fleet.now / b) * b - b; // the bucket in progress is not drawn yet
    let start = end - Math.floor(state.range / b) * b + b;
    let first = Infinity;
    for (const s of fleet.series) for (const p of s.points || []) if (p.t >= start && p.t < first) first = p.t;
    if (first !== Infinity) start = Math.max(start, Math.floor(first / b) * b);
    const xs = [];
    for (let t = start; t <= end; t += b) xs.push(t);
    return {xs, b};
  }

  // sums adds up the series bucket by bucket: deltas summed, each series'
  // peer gauge kept apart (a peer reports into one bucket of several).
  function sums(series, xs, b, nb) {
    const n = xs.length;
    const a = {n, fp: zeros(n), fo: zeros(n), up: zeros(n), stalls: zeros(n), stallS: zeros(n), watchS: zeros(n),
      chunks: zeros(n), rare: zeros(n), has: new Array(n).fill(false), st: [], peers: []};
    for (let i = 0; i < n; i++) a.st.push(zeros(nb + 1));
    for (const s of series) {
      const peers = new Array(n).fill(null);
      let any = false;
      for (const p of s.points || []) {
        const i = Math.floor((p.t - xs[0]) / b);
        if (!(i >= 0 && i < n)) continue;
        any = true;
        a.has[i] = true;
        a.fp[i] += num(p.from_peers);
        a.fo[i] += num(p.from_origin);
        a.up[i] += num(p.uploaded);
        a.stalls[i] += num(p.stalls);
        a.stallS[i] += num(p.stall_s);
        a.watchS[i] += num(p.watch_s);
        a.chunks[i] += num(p.chunks);
        a.rare[i] += num(p.rare_chunks);
        const st = p.startups || [];
        for (let k = 0; k <= nb && k < st.length; k++) a.st[i][k] += num(st[k]);
        peers[i] = Math.max(peers[i] || 0, num(p.peers));
      }
      if (any) a.peers.push(peers);
    }
    return a;
  }

  // derive turns sums into the charted figures, each over a trailing
  // window of k buckets (ratios are ratios of sums over the window).
  function derive(a, b, k, bounds) {
    const n = a.n;
    const d = {offload: [], egress: [], startup: [], rebuffer: [], scarcity: [], peers: []};
    for (let i = 0; i < n; i++) {
      const lo = Math.max(0, i - k + 1);
      let has = false, fp = 0, fo = 0, stall = 0, watch = 0, chunks = 0, rare = 0;
      const st = zeros(bounds.length + 1);
      for (let j = lo; j <= i; j++) {
        if (!a.has[j]) continue;
        has = true;
        fp += a.fp[j]; fo += a.fo[j]; stall += a.stallS[j]; watch += a.watchS[j];
        chunks += a.chunks[j]; rare += a.rare[j];
        for (let q = 0; q < st.length; q++) st[q] += a.st[j][q];
      }
      let peers = null;
      for (const ps of a.peers) {
        let m = null;
        for (let j = lo; j <= i; j++) if (ps[j] != null && (m == null || ps[j] > m)) m = ps[j];
        if (m != null) peers = (peers || 0) + m;
      }
      d.offload.push(has && fp + fo > 0 ? fp / (fp + fo) : null);
      d.egress.push(has ? fo / ((i - lo + 1) * b) : null);
      d.startup.push(has ? quantile(0.95, st, bounds) : null);
      d.rebuffer.push(has && watch > 0 ? stall / watch * 3600 : null);
      d.scarcity.push(has && chunks > 0 ? rare / chunks : null);
      d.peers.push(peers);
    }
    return d;
  }

  // quantile estimates the q-quantile of a histogram (counts per bucket,
  // the last one above every bound) by interpolating linearly within the
  // bucket it falls in, as Prometheus' histogram_quantile does; in the
  // +Inf bucket it is the highest finite bound.
  function quantile(q, counts, bounds) {
    let total = 0;
    for (const c of counts) total += c;
    if (!(total > 0)) return null;
    const rank = q * total;
    let cum = 0;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i];
      if (c > 0 && cum + c >= rank) {
        if (i >= bounds.length) return bounds[bounds.length - 1];
        const lo = i === 0 ? 0 : bounds[i - 1];
        return lo + (bounds[i] - lo) * (rank - cum) / c;
      }
      cum += c;
    }
    return bounds[bounds.length - 1];
  }

  // ---- drawing ----

  function card(parent, spec) {
    const el = document.createElement('div');
    el.className = 'card';
    el.id = 'card-' + spec.id;
    el.innerHTML = '<div class="card-head"><div><h2></h2><span class="hint"></span></div><span class="now"></span></div><div class="plot"></div>';
    el.querySelector('h2').textContent = spec.title;
    el.querySelector('.hint').textContent = spec.hint;
    parent.appendChild(el);
    return el;
  }

  // draw puts data (x, then one array per line) on the chart for spec,
  // made anew when its lines changed.
  function draw(parent, spec, lines, xs, thr) {
    let c = state.charts[spec.id];
    const key = lines.map((l) => l.label).join('\n') + '\n' + thr;
    if (!c) {
      c = state.charts[spec.id] = {spec, el: card(parent, spec)};
    }
    const data = [xs].concat(lines.map((l) => l.values));
    if (thr != null) data.push(xs.map(() => thr));
    if (c.u && c.key === key) {
      c.u.setData(data);
    } else {
      if (c.u) c.u.destroy();
      c.key = key;
      c.lines = lines;
      c.thr = thr;
      c.u = new uPlot(options(spec, lines, thr, plotWidth(c.el)), data, c.el.querySelector('.plot'));
    }
    c.data = data;
    return c;
  }

  function options(spec, lines, thr, width) {
    const f = fmt[spec.unit];
    // Each line is drawn 2 px wider than the one after it, so lines that
    // coincide (two cohorts with the same P95) all stay visible.
    const series = [{}].concat(lines.map((l, i) => ({label: l.label, stroke: l.color, width: 2 + 2 * (lines.length - 1 - i), value: (u, v) => f(v)})));
    if (thr != null) {
      const dir = spec.bad(thr - 1e-9, thr) ? 'below' : 'above';
      series.push({label: 'alert ' + dir + ' ' + axis[spec.unit](thr), stroke: THRESHOLD_COLOR, width: 1.5, dash: [6, 4],
        points: {show: false}, value: (u, v) => f(v)});
    }
    return {
      width, height: 190,
      series,
      legend: {live: false},
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: true}, y: {range: (u, min, max) => yRange(spec, thr, min, max)}},
      axes: [
        {stroke: '#5b6670', grid: {stroke: '#eceff2'}, ticks: {stroke: '#d9dee3'}},
        {stroke: '#5b6670', grid: {stroke: '#eceff2'}, ticks: {stroke: '#d9dee3'}, size: 78,
          values: (u, splits) => splits.map(axis[spec.unit])},
      ],
    };
  }

  // yRange starts every axis at zero and keeps the threshold in view.
  function yRange(spec, thr, min, max) {
    if (spec.fixed) return spec.fixed;
    let top = max == null || !isFinite(max) ? 0 : max * 1.15;
    if (thr != null) top = Math.max(top, thr * 1.3);
    if (spec.unit === 'count') top = Math.max(Math.ceil(top), 4);
    return [0, top > 0 ? top : 1];
  }

  function plotWidth(el) { return Math.max(300, el.clientWidth - 26); }

  function lastValue(values) {
    for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
    return null;
  }

  function render() {
    const fleet = state.fleet;
    if (!fleet) return;
    const t0 = performance.now();
    const bounds = (fleet.startup_buckets_s || []).map(Number);
    const thresholds = fleet.thresholds || {};
    fillSelectors(fleet.series);
    const {xs, b} = timeline(fleet);
    const k = Math.max(1, Math.round(state.win / b));
    const d = derive(sums(filter(fleet.series), xs, b, bounds.length), b, k, bounds);
    const grid = document.getElementById('charts');
    for (const spec of CHARTS) {
      const values = spec.get(d);
      const thr = spec.thr ? optNum(spec.thr(thresholds)) : null;
      const c = draw(grid, spec, [{label: spec.title, color: spec.color, values}], xs, thr);
      const now = c.el.querySelector('.now');
      const v = lastValue(values);
      now.textContent = fmt[spec.unit](v);
      now.className = 'now' + (v == null || thr == null ? '' : spec.bad(v, thr) ? ' bad' : ' ok');
    }
    renderAB(fleet, xs, b, k, bounds, thresholds);
    state.renderMs = performance.now() - t0;
    const peers = lastValue(d.peers);
    setStatus('Updated ' + new Date(fleet.now * 1000).toLocaleTimeString() + ' · ' + fleet.series.length +
      ' label sets · ' + (peers == null ? 'no' : Math.round(peers)) + ' peers in view · ' + b + ' s buckets · refresh every ' + refreshS + ' s', false);
  }

  // renderAB draws each cohort's offload and P95 start-up (every other
  // selector applies) and a table of their figures over the whole range.
  function renderAB(fleet, xs, b, k, bounds, thresholds) {
    const groups = new Map();
    for (const s of filter(fleet.series, 'cohort')) {
      const c = label(s, 'cohort');
      if (!groups.has(c)) groups.set(c, []);
      groups.get(c).push(s);
    }
    const cohorts = [...groups.keys()].sort();
    const per = cohorts.map((c, i) => {
      const a = sums(groups.get(c), xs, b, bounds.length);
      return {cohort: c, label: c || '(no cohort)', color: PALETTE[i % PALETTE.length],
        d: derive(a, b, k, bounds), all: derive(a, b, Math.max(1, xs.length), bounds), a};
    });
    const note = document.getElementById('ab-note');
    note.textContent = cohorts.length > 1
      ? 'Every cohort in the data, with the other selectors applied; the table covers the whole range.'
      : 'One cohort in view: peers report a cohort (experiment/variant) when the policy puts them in an experiment.';
    const grid = document.getElementById('ab-charts');
    for (const spec of AB_CHARTS) {
      const thr = optNum(spec.thr(thresholds));
      draw(grid, spec, per.map((p) => ({label: p.label, color: p.color, values: spec.get(p.d)})), xs, thr);
      state.charts[spec.id].el.querySelector('.now').textContent = '';
    }
    const rows = [
      ['Offload', (p) => lastValue(p.all.offload), fmt.pct, CHARTS[0], thresholds.offload_min],
      ['P95 start-up', (p) => lastValue(p.all.startup), fmt.secs, CHARTS[2], thresholds.startup_p95_max_s],
      ['Rebuffering', (p) => lastValue(p.all.rebuffer), fmt.perHour, CHARTS[3], thresholds.rebuffer_s_per_hour_max],
      ['Rare-chunk scarcity', (p) => lastValue(p.all.scarcity), fmt.pct, CHARTS[4], thresholds.scarcity_max],
      ['Peers now', (p) => lastValue(p.d.peers), fmt.count],
      ['Bytes from peers', (p) => total(p.a.fp), fmt.bytes],
      ['Bytes from origin', (p) => total(p.a.fo), fmt.bytes],
      ['Start-ups', (p) => p.a.st.reduce((s, h) => s + total(h), 0), fmt.count],
    ];
    const table = document.getElementById('ab-table');
    table.textContent = '';
    const head = table.insertRow();
    head.appendChild(th('Over the range'));
    for (const p of per) head.appendChild(th(p.label));
    for (const [name, get, f, spec, thr] of rows) {
      const tr = table.insertRow();
      tr.appendChild(th(name));
      for (const p of per) {
        const v = get(p);
        const td = tr.insertCell();
        td.textContent = f(v);
        if (spec && v != null && thr != null && spec.bad(v, thr)) td.className = 'bad';
      }
    }
  }

  function th(text) {
    const e = document.createElement('th');
    e.textContent = text;
    return e;
  }

  // fillSelectors lists, for each label, "all" and every value present,
  // keeping the current choice even when it is gone from the data.
  function fillSelectors(series) {
    for (const d of DIMS) {
      const values = new Set(series.map((s) => label(s, d)));
      if (state.sel[d] !== ALL) values.add(state.sel[d]);
      const sel = document.getElementById('sel-' + d);
      const want = [ALL].concat([...values].sort().map((v) => '=' + v));
      const have = [...sel.options].map((o) => o.value);
      if (want.join('\n') !== have.join('\n')) {
        sel.textContent = '';
        for (const v of want) {
          const o = document.createElement('option');
          o.value = v;
          o.textContent = v === ALL ? 'all' : v === '=' ? '(none)' : v.slice(1);
          sel.appendChild(o);
        }
      }
      sel.value = state.sel[d] === ALL ? ALL : '=' + state.sel[d];
    }
  }

  // ---- fetching ----

  let timer = null;
  let generation = 0; // a new range starts a new generation; older answers are dropped

  // load asks for what is new since the last answer (its last few
  // buckets again, as the newest was still filling) and merges it in; the
  // first time, or after the range changed, for the whole range.
  async function load() {
    clearTimeout(timer);
    const gen = generation;
    const old = state.fleet;
    const b = old && old.bucket_s > 0 ? old.bucket_s : 10;
    const since = old ? old.now - 3 * b : Math.floor(Date.now() / 1000 - state.range - state.win - 60);
    const wait = old ? 10 : 30; // seconds; a whole hour of a large fleet is tens of MB
    const ctl = new AbortController();
    const stop = setTimeout(() => ctl.abort(), wait * 1000);
    try {
      const headers = {Accept: 'application/json'};
      if (token) headers.Authorization = 'Bearer ' + token;
      const resp = await fetch('../api/fleet?since=' + since, {headers, cache: 'no-store', signal: ctl.signal});
      if (!resp.ok) throw new Error(await explain(resp));
      const fresh = await resp.json();
      if (!fresh || !Array.isArray(fresh.series) || !(fresh.now > 0)) throw new Error('GET /api/fleet: the answer is not fleet telemetry');
      if (gen !== generation) return;
      state.fleet = old ? merge(old, fresh, Math.floor(since / b) * b) : fresh;
      state.loads++;
      render();
      await report(state.fleet);
    } catch (e) {
      if (gen !== generation) return;
      const msg = e.name === 'AbortError' ? 'GET /api/fleet: no answer within ' + wait + ' s' : e.message;
      setStatus(msg + (state.fleet ? ' (showing the last data)' : ''), true);
      await report(state.fleet, msg);
    } finally {
      clearTimeout(stop);
      if (gen === generation) timer = setTimeout(load, refreshS * 1000);
    }
  }

  // merge takes fresh's points from the bucket from on (the server sends
  // every point from the bucket holding since) and old's before it, and
  // forgets what has left the range.
  function merge(old, fresh, from) {
    const cutoff = fresh.now - state.range - state.win - 60;
    const key = (s) => DIMS.map((d) => label(s, d)).join('\u0000');
    const all = new Map();
    for (const s of old.series) {
      all.set(key(s), {labels: s.labels, points: (s.points || []).filter((p) => p.t < from && p.t >= cutoff)});
    }
    for (const s of fresh.series) {
      const points = (s.points || []).filter((p) => p.t >= from);
      const e = all.get(key(s));
      if (e) e.points = e.points.concat(points);
      else all.set(key(s), {labels: s.labels, points});
    }
    return Object.assign({}, fresh, {series: [...all.values()].filter((s) => s.points.length > 0)});
  }

  async function explain(resp) {
    let detail = '';
    try {
      const body = await resp.json();
      detail = body && body.error ? ': ' + body.error : '';
    } catch (e) { /* not JSON */ }
    if (resp.status === 401 || resp.status === 403) {
      return 'The tracker wants its admin token: open this page as /dashboard/#token=<admin token> (GET /api/fleet: ' + resp.status + detail + ')';
    }
    if (resp.status === 404) return 'This tracker serves no fleet telemetry (GET /api/fleet: 404' + detail + ')';
    return 'GET /api/fleet: ' + resp.status + ' ' + resp.statusText + detail;
  }

  function setStatus(text, bad) {
    const el = document.getElementById('status');
    el.textContent = text;
    el.className = bad ? 'error' : '';
  }

  // ---- self-check for tests ----

  // report POSTs, when the fragment names a path, what each chart drew:
  // its points, how many of its pixels have the line's colour (and the
  // threshold's), the latest value and what the selectors offer.
  async function report(fleet, err) {
    if (!reportPath) return;
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); // uPlot draws on the next frame
    const r = {location: location.href, now: fleet ? fleet.now : 0, loads: state.loads, renderMs: state.renderMs || 0, error: err || '', errors: errors.slice(), tokenSent: token !== '', series: fleet ? fleet.series.length : 0,
      options: {}, charts: [], cohorts: []};
    for (const d of DIMS) {
      r.options[d] = [...document.getElementById('sel-' + d).options].map((o) => o.value).filter((v) => v !== ALL).map((v) => v.slice(1));
    }
    for (const spec of CHARTS.concat(AB_CHARTS)) {
      const c = state.charts[spec.id];
      if (!c) continue;
      c.lines.forEach((l, i) => {
        const entry = {chart: spec.id, line: l.label, points: c.data[i + 1].filter((v) => v != null).length,
          last: lastValue(c.data[i + 1]), inked: inked(c.u, l.color),
          threshold: c.thr == null ? null : c.thr, thresholdInked: c.thr == null ? 0 : inked(c.u, THRESHOLD_COLOR)};
        (spec.id.startsWith('ab-') ? r.cohorts : r.charts).push(entry);
      });
    }
    r.width = document.documentElement.scrollWidth;
    r.height = document.documentElement.scrollHeight;
    try {
      await fetch(reportPath, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(r)});
    } catch (e) { /* the test is gone */ }
  }

  // inked counts the plot-area pixels within a small distance of color.
  function inked(u, color) {
    const bb = u.bbox;
    if (!(bb.width > 0 && bb.height > 0)) return 0;
    const px = u.ctx.getImageData(bb.left, bb.top, bb.width, bb.height).data;
    const want = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    let n = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 128 && Math.abs(px[i] - want[0]) + Math.abs(px[i + 1] - want[1]) + Math.abs(px[i + 2] - want[2]) < 60) n++;
    }
    return n;
  }

  // ---- helpers and start ----

  function zeros(n) { return new Array(n).fill(0); }
  function num(v) { v = Number(v); return isFinite(v) && v > 0 ? v : 0; }
  function optNum(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function total(xs) { return xs.reduce((s, v) => s + v, 0); }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  // si writes v with a decimal prefix (k, M, G…); short for axis labels.
  function si(v, short) {
    const units = ['', 'k', 'M', 'G', 'T', 'P'];
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    const s = i === 0 || short ? String(+v.toFixed(v < 10 ? 1 : 0)) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
    return s + ' ' + units[i];
  }

  // takeToken reads the admin token from the fragment, keeps it in this
  // tab's session storage (so a reload still has it) and takes it out of
  // the address bar, bookmarks and history.
  function takeToken() {
    const key = 'shoal-dashboard-token';
    let t = frag.get('token');
    if (t === null) {
      try { return sessionStorage.getItem(key) || ''; } catch (e) { return ''; }
    }
    try { sessionStorage.setItem(key, t); } catch (e) { /* storage off: the fragment only */ }
    frag.delete('token');
    const rest = frag.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    return t;
  }

  // sameOriginPath accepts a path on this origin only ("/x", not "//host").
  function sameOriginPath(p) {
    return p && p.startsWith('/') && !p.startsWith('//') && !p.startsWith('/\\') ? p : '';
  }

  for (const d of DIMS) {
    document.getElementById('sel-' + d).addEventListener('change', (e) => {
      const v = e.target.value;
      state.sel[d] = v === ALL ? ALL : v.slice(1);
      render();
    });
  }
  // A new range or window needs history the page may not have: load it all.
  for (const [id, field] of [['sel-range', 'range'], ['sel-window', 'win']]) {
    document.getElementById(id).addEventListener('change', (e) => {
      state[field] = Number(e.target.value);
      state.fleet = null;
      generation++;
      load();
    });
  }
  window.addEventListener('resize', () => {
    for (const c of Object.values(state.charts)) if (c.u) c.u.setSize({width: plotWidth(c.el), height: 190});
  });
  load();
})();
