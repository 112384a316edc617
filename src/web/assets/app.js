// The tsvs dashboard: polls vsd's read model once a second, draws the estimator's rates with
// uPlot, and changes weights through the control API (POST /api/v1/call with the bearer
// token), the same operations vsadm sends. Plain browser JavaScript, no build step, nothing
// fetched from anywhere but vsd. Loaded as a module (strict, deferred, after uPlot).

(() => {
  const POLL_MS = 1000;
  const KEEP_POINTS = 600;
  const FWD = { 0: 'Masq', 1: 'Local', 2: 'Tunnel', 3: 'Route', 5: 'Proxy' };
  const RATE_FIELDS = ['cps', 'inpps', 'outpps', 'inbps', 'outbps'];

  const $ = (sel) => document.querySelector(sel);
  const state = {
    token: '',
    blocks: new Map(), // service key -> { root, chart, data, rows: Map(destKey -> row) }
    total: null, // { chart, data }
    historyLoaded: false,
    updates: 0,
    lastWeights: loadRemembered(),
  };

  // ---- token: from the URL fragment (#token=…), else this tab's storage --------------------

  function initToken() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      state.token = decodeURIComponent(m[1]);
      sessionStorage.setItem('tsvs-token', state.token);
      history.replaceState(null, '', location.pathname + location.search);
    } else {
      state.token = sessionStorage.getItem('tsvs-token') || '';
    }
    $('#token').value = state.token;
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = $('#token').value.trim();
      sessionStorage.setItem('tsvs-token', state.token);
      refreshAuth();
    });
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (state.token) h.authorization = `Bearer ${state.token}`;
    return h;
  }

  async function getJson(path) {
    const r = await fetch(path, { headers: headers(), cache: 'no-store' });
    if (r.status === 401) throw new Error('a token is needed to read this director');
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  let callId = 1;
  /** One control API operation, as vsadm sends it. */
  async function call(op, args) {
    const r = await fetch('/api/v1/call', {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ id: callId++, op, args }),
    });
    let body = null;
    try {
      body = await r.json();
    } catch {
      body = null;
    }
    if (r.status === 401) throw new Error('the token is missing or wrong');
    if (!body?.ok) throw new Error(body?.error ? `${body.error.errno}: ${body.error.message}` : `HTTP ${r.status}`);
    return body.result;
  }

  async function refreshAuth() {
    const el = $('#auth');
    if (!state.token) {
      el.textContent = 'read-only';
      document.body.dataset.canEdit = 'false';
      return;
    }
    try {
      await call('getInfo', []);
      el.textContent = 'changes allowed';
      document.body.dataset.canEdit = 'true';
    } catch (e) {
      el.textContent = e.message;
      document.body.dataset.canEdit = 'false';
    }
  }

  // ---- formatting --------------------------------------------------------------------------

  const exact = (n) => String(n ?? 0);
  function short(n) {
    if (n == null) return '–';
    const a = Math.abs(n);
    if (a >= 1e12) return `${(n / 1e12).toFixed(1)}T`;
    if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
    if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
    if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
    return String(Math.round(n * 100) / 100);
  }
  function bytes(n) {
    if (n == null) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (Math.abs(v) >= 1024 && i < u.length - 1) {
      v /= 1024;
      i++;
    }
    return `${i ? v.toFixed(1) : v} ${u[i]}`;
  }
  const hostPort = (af, addr, port) => (af === 6 ? `[${addr}]:${port}` : `${addr}:${port}`);
  const protoName = (p) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : `IP${p}`);

  function serviceTitle(s) {
    let t = s.fwmark ? `FWM  ${s.fwmark}${s.af === 6 ? ' IPv6' : ''}` : `${protoName(s.protocol).padEnd(4)} ${hostPort(s.af, s.addr, s.port)}`;
    t += ` ${s.schedName}`;
    if (s.flags & 1) t += ` persistent ${s.timeout}`;
    if (s.flags & 4) t += ' ops';
    return t;
  }

  /** Health facts from the annotations the health checker adds (same reading as the metrics). */
  function healthOf(d) {
    const out = {};
    const h = d.health;
    const upRe = /^(up|alive|healthy|ok|pass(ing)?|active)$/i;
    const downRe = /^(down|dead|unhealthy|fail(ed|ing)?|inactive)$/i;
    const fromState = (s) => (upRe.test(s) ? true : downRe.test(s) ? false : undefined);
    if (typeof h === 'string') {
      out.state = h;
      out.up = fromState(h);
    } else if (h && typeof h === 'object') {
      out.state = typeof h.state === 'string' ? h.state : typeof h.status === 'string' ? h.status : undefined;
      for (const k of ['up', 'healthy', 'alive']) if (typeof h[k] === 'boolean') out.up = h[k];
      if (out.up === undefined && out.state) out.up = fromState(out.state);
      if (typeof h.configuredWeight === 'number') out.configuredWeight = h.configuredWeight;
      if (typeof h.reason === 'string') out.weightReason = h.reason;
      if (h.sorryServer === true && !out.state) out.state = h.active ? 'sorry-active' : 'sorry-standby';
    }
    for (const k of ['healthy', 'up', 'alive']) if (typeof d[k] === 'boolean') out.up = d[k];
    for (const k of ['configuredWeight', 'weightConfigured']) if (typeof d[k] === 'number') out.configuredWeight = d[k];
    if (typeof d.weightReason === 'string') out.weightReason = d.weightReason;
    return out;
  }

  // ---- DOM helpers -------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function toast(msg, isError) {
    const m = el('div', { class: `msg${isError ? ' error' : ''}`, text: msg });
    $('#toast').append(m);
    setTimeout(() => m.remove(), isError ? 8000 : 3000);
  }

  // ---- charts ------------------------------------------------------------------------------

  function chartOpts(width, height) {
    return {
      width,
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: { x: { time: true }, n: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] }, B: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        {},
        { label: 'conns/s', scale: 'n', stroke: '#2f6fde', width: 1.5, value: (_u, v) => short(v) },
        { label: 'in pkts/s', scale: 'n', stroke: '#1f9d55', width: 1.5, value: (_u, v) => short(v) },
        { label: 'out pkts/s', scale: 'n', stroke: '#8e44ad', width: 1.5, value: (_u, v) => short(v) },
        { label: 'in B/s', scale: 'B', stroke: '#e67e22', width: 1.5, dash: [6, 3], value: (_u, v) => bytes(v) },
        { label: 'out B/s', scale: 'B', stroke: '#c0392b', width: 1.5, dash: [6, 3], value: (_u, v) => bytes(v) },
      ],
      axes: [
        {},
        { scale: 'n', values: (_u, vals) => vals.map(short), size: 50 },
        { scale: 'B', side: 1, values: (_u, vals) => vals.map(bytes), grid: { show: false }, size: 70 },
      ],
    };
  }

  function newChart(container, height) {
    const data = [[], [], [], [], [], []];
    if (typeof window.uPlot !== 'function') return { chart: null, data };
    const width = Math.max(300, container.clientWidth || 600);
    const chart = new window.uPlot(chartOpts(width, height), data, container);
    return { chart, data };
  }

  function pushPoint(c, t, rates) {
    const d = c.data;
    if (d[0].length && d[0][d[0].length - 1] >= t) return;
    d[0].push(t);
    RATE_FIELDS.forEach((f, i) => {
      d[i + 1].push(rates ? rates[f] : null);
    });
    if (d[0].length > KEEP_POINTS) for (const a of d) a.splice(0, a.length - KEEP_POINTS);
    c.chart?.setData(d);
  }

  function prefill(c, h, series) {
    if (!series) return;
    h.t.forEach((t, k) => {
      c.data[0].push(t);
      RATE_FIELDS.forEach((f, i) => {
        c.data[i + 1].push(series[f][k]);
      });
    });
    c.chart?.setData(c.data);
  }

  window.addEventListener('resize', () => {
    const all = [state.total, ...[...state.blocks.values()].map((b) => b.chart)];
    for (const c of all) if (c?.chart) c.chart.setSize({ width: Math.max(300, c.chart.root.parentElement.clientWidth), height: c.chart.height });
  });

  // ---- services ----------------------------------------------------------------------------

  function keySpec(s) {
    return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
  }

  function destSpec(d, weight) {
    return {
      af: d.af,
      addr: d.addr,
      port: d.port,
      connFlags: d.connFlags,
      weight,
      uThreshold: d.uThreshold,
      lThreshold: d.lThreshold,
      tunType: d.tunType,
      tunPort: d.tunPort,
      tunFlags: d.tunFlags,
    };
  }

  function loadRemembered() {
    try {
      return JSON.parse(sessionStorage.getItem('tsvs-weights') || '{}');
    } catch {
      return {};
    }
  }

  function remember(id, w) {
    state.lastWeights[id] = w;
    sessionStorage.setItem('tsvs-weights', JSON.stringify(state.lastWeights));
  }

  function newBlock(s) {
    const chartBox = el('div', { class: 'chart' });
    const tbody = el('tbody');
    const root = el(
      'section',
      { class: 'panel svc', 'data-key': s.key },
      el('div', { class: 'svc-head' }, el('h2', { class: 'svc-title' }), el('span', { class: 'badge served' }), el('span', { class: 'muted svc-rates' })),
      chartBox,
      el(
        'table',
        { class: 'grid dests' },
        el(
          'thead',
          null,
          el(
            'tr',
            null,
            ...['Real server', 'Forward', 'Weight', 'Health', 'Active', 'Inactive', 'Persistent', 'CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS', 'Change'].map((h) => el('th', { text: h })),
          ),
        ),
        tbody,
      ),
    );
    $('#services').append(root);
    const b = { root, tbody, chart: newChart(chartBox, 110), rows: new Map(), svc: s };
    return b;
  }

  function newRow(b, d) {
    const id = `${b.svc.key}|${hostPort(d.af, d.addr, d.port)}`;
    const input = el('input', { class: 'w', type: 'number', min: '0', step: '1', 'aria-label': 'weight' });
    const setBtn = el('button', { class: 'set', type: 'button', text: 'Set' });
    const drainBtn = el('button', { class: 'drain', type: 'button', text: 'Drain' });
    const cells = {};
    const td = (cls) => (cells[cls] = el('td', { class: cls }));
    const tr = el(
      'tr',
      { 'data-dest': hostPort(d.af, d.addr, d.port) },
      el('td', { class: 'addr', text: hostPort(d.af, d.addr, d.port) }),
      td('fwd'),
      td('weight'),
      td('health'),
      td('active'),
      td('inactive'),
      td('persist'),
      td('cps'),
      td('inpps'),
      td('outpps'),
      td('inbps'),
      td('outbps'),
      el('td', null, el('span', { class: 'edit' }, input, setBtn, drainBtn)),
    );
    const row = { tr, cells, input, setBtn, drainBtn, d, id, dirty: false };
    input.addEventListener('input', () => {
      row.dirty = true;
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') setBtn.click();
    });
    setBtn.addEventListener('click', () => changeWeight(b, row, Number(input.value)));
    drainBtn.addEventListener('click', () => {
      if (row.d.weight === 0) {
        const h = healthOf(row.d);
        changeWeight(b, row, h.configuredWeight || state.lastWeights[row.id] || 1);
      } else {
        remember(row.id, row.d.weight);
        changeWeight(b, row, 0);
      }
    });
    b.tbody.append(tr);
    return row;
  }

  async function changeWeight(b, row, w) {
    if (!Number.isInteger(w) || w < 0 || w > 2147483647) {
      toast('the weight is a whole number from 0 to 2147483647', true);
      return;
    }
    row.setBtn.disabled = row.drainBtn.disabled = true;
    try {
      await call('editDest', [keySpec(b.svc), destSpec(row.d, w)]);
      row.dirty = false;
      toast(`${row.tr.dataset.dest}: weight ${w}`);
      await poll(true);
    } catch (e) {
      toast(`${row.tr.dataset.dest}: ${e.message}`, true);
    } finally {
      row.setBtn.disabled = row.drainBtn.disabled = false;
    }
  }

  function updateRow(row, d) {
    row.d = d;
    const c = row.cells;
    setText(c.fwd, FWD[d.connFlags & 7] || '?');
    setText(c.weight, exact(d.weight));
    const h = healthOf(d);
    c.health.replaceChildren();
    if (d.weight === 0) c.health.append(el('span', { class: 'badge drain', text: 'drained', title: 'weight 0: no new connections' }), ' ');
    if (h.up !== undefined || h.state) c.health.append(el('span', { class: `badge ${h.up === false ? 'down' : h.up ? 'up' : ''}`, text: h.state || (h.up ? 'up' : 'down') }));
    else if (d.weight !== 0) c.health.append(el('span', { class: 'dim', text: '–' }));
    if (d.flags & 2) c.health.append(' ', el('span', { class: 'badge warn', text: 'overloaded' }));
    c.health.title = [h.weightReason, h.configuredWeight !== undefined ? `configured weight ${h.configuredWeight}` : ''].filter(Boolean).join('; ');
    setText(c.active, exact(d.activeConns));
    setText(c.inactive, exact(d.inactConns));
    setText(c.persist, exact(d.persistConns));
    for (const f of RATE_FIELDS) setText(c[f], exact(d.rates[f]));
    if (!row.dirty && document.activeElement !== row.input) row.input.value = String(d.weight);
    row.drainBtn.textContent = d.weight === 0 ? 'Undrain' : 'Drain';
    const canEdit = document.body.dataset.canEdit === 'true';
    row.setBtn.disabled = row.drainBtn.disabled = !canEdit;
    row.input.disabled = !canEdit;
  }

  function renderServices(ov) {
    const seen = new Set();
    const t = ov.time / 1000;
    for (const s of ov.services) {
      seen.add(s.key);
      let b = state.blocks.get(s.key);
      if (!b) {
        b = newBlock(s);
        state.blocks.set(s.key, b);
        if (state.history) prefill(b.chart, state.history, state.history.services[s.key]);
      }
      b.svc = s;
      setText(b.root.querySelector('.svc-title'), serviceTitle(s));
      const served = b.root.querySelector('.served');
      if (s.servedBy?.length) {
        setText(served, `served by ${s.servedBy.join(', ')}`);
        served.className = 'badge served up';
        served.title = '';
      } else if (s.unserved) {
        setText(served, 'not served');
        served.className = 'badge served down';
        served.title = s.unserved;
      } else {
        setText(served, '');
        served.className = 'badge served';
      }
      const r = s.rates;
      setText(b.root.querySelector('.svc-rates'), `${exact(r.cps)} conns/s · ${exact(r.inpps)}/${exact(r.outpps)} pkts/s · ${bytes(r.inbps)}/${bytes(r.outbps)} per s · ${exact(s.stats.conns)} connections`);
      pushPoint(b.chart, t, r);
      const seenDests = new Set();
      for (const d of s.dests) {
        const k = hostPort(d.af, d.addr, d.port);
        seenDests.add(k);
        let row = b.rows.get(k);
        if (!row) b.rows.set(k, (row = newRow(b, d)));
        updateRow(row, d);
      }
      for (const [k, row] of b.rows) {
        if (!seenDests.has(k)) {
          row.tr.remove();
          b.rows.delete(k);
        }
      }
      if (!s.dests.length && !b.tbody.querySelector('.none')) b.tbody.append(el('tr', { class: 'none' }, el('td', { class: 'dim', colspan: '13', text: 'no real servers' })));
      if (s.dests.length) b.tbody.querySelector('.none')?.remove();
    }
    for (const [k, b] of state.blocks) {
      if (seen.has(k)) continue;
      b.chart.chart?.destroy();
      b.root.remove();
      state.blocks.delete(k);
    }
  }

  function renderTotals(ov) {
    const r = ov.totals.rates;
    for (const f of RATE_FIELDS) setText($(`#t-${f}`), exact(r[f]));
    setText($('#t-conns'), exact(ov.totals.stats.conns));
    setText($('#t-entries'), exact(ov.table.entries));
    setText($('#t-mem'), bytes(ov.table.bytes));
    setText($('#version'), `${ov.version} · IPVS ${ov.info.version} · ${ov.info.numServices} services`);
    if (!state.total) {
      state.total = newChart($('#chart-total'), 180);
      if (state.history) prefill(state.total, state.history, state.history.totals);
    }
    pushPoint(state.total, ov.time / 1000, r);
  }

  // ---- polling -----------------------------------------------------------------------------

  let timer = null;
  async function poll(once) {
    if (timer && !once) clearTimeout(timer);
    const st = $('#status');
    try {
      if (!state.historyLoaded) {
        state.history = await getJson('/web/v1/history');
        state.historyLoaded = true;
      }
      const ov = await getJson('/web/v1/overview');
      renderTotals(ov);
      renderServices(ov);
      state.updates++;
      document.body.dataset.updates = String(state.updates);
      st.textContent = `live · ${new Date(ov.time).toLocaleTimeString()}`;
      st.className = 'status live';
    } catch (e) {
      st.textContent = e.message;
      st.className = 'status error';
    } finally {
      if (!once) timer = setTimeout(() => poll(false), POLL_MS);
    }
  }

  // ---- connection search -------------------------------------------------------------------

  async function searchConns(ev) {
    ev?.preventDefault();
    const q = $('#conn-q').value.trim();
    const info = $('#conn-info');
    try {
      const r = await getJson(`/web/v1/conns?limit=200&q=${encodeURIComponent(q)}`);
      const rows = r.matches.map((c) => {
        const exp = Math.max(0, Math.floor(c.expiresMs / 1000));
        const mmss = `${String(Math.floor(exp / 60)).padStart(2, '0')}:${String(exp % 60).padStart(2, '0')}`;
        return el(
          'tr',
          null,
          el('td', { text: c.protocol === 0 ? 'IP' : protoName(c.protocol) }),
          el('td', { text: mmss }),
          el('td', { text: c.state }),
          el('td', { text: hostPort(c.af, c.caddr, c.cport) }),
          el('td', { text: hostPort(c.af, c.vaddr, c.vport) }),
          el('td', { text: hostPort(c.daf, c.daddr, c.dport) }),
        );
      });
      $('#conn-table tbody').replaceChildren(...rows);
      info.textContent = `${r.matches.length}${r.more ? '+' : ''} shown · ${r.total} entries in the table`;
      document.body.dataset.searches = String(Number(document.body.dataset.searches || 0) + 1);
    } catch (e) {
      info.textContent = e.message;
    }
  }

  // ---- start -------------------------------------------------------------------------------

  initToken();
  $('#conn-form').addEventListener('submit', searchConns);
  refreshAuth().then(() => {
    poll(false);
    searchConns();
  });
})();
