"""The dashboard's one inline script: the threshold form's Preview (``POST /admin/whatif``) and Apply (``PUT``).

Kept apart from ``router.admin.dashboard`` so that the page's HTML stays readable. Everything the script writes
into the page goes through ``textContent``, never ``innerHTML``, so nothing an answer carries can run.
"""

from __future__ import annotations

SCRIPT = """
(function(){
  const form = document.getElementById('threshold-form');
  const status = document.getElementById('status');
  const config = JSON.parse(document.getElementById('frugal-dashboard').textContent);
  function show(text, ok){ status.textContent = text; status.className = ok ? 'ok' : 'err'; }
  function headers(){
    const h = {'Content-Type': 'application/json'};
    const key = document.getElementById('admin-key').value;
    if (key) { h['Authorization'] = 'Bearer ' + key; }
    return h;
  }
  function changed(){
    const changes = {};
    for (const input of form.querySelectorAll('input[data-threshold]')) {
      if (input.value !== '' && Number(input.value) !== Number(input.dataset.current)) {
        changes[input.dataset.threshold] = Number(input.value);
      }
    }
    return changes;
  }
  async function send(method, path, body){
    let response, data;
    try {
      response = await fetch(path, {method: method, headers: headers(), body: JSON.stringify(body)});
      data = await response.json();
    } catch (error) { throw new Error('request failed: ' + error); }
    if (!response.ok) { throw new Error((data.error && data.error.message) || ('HTTP ' + response.status)); }
    return data;
  }
  function addHistoryRow(change){
    const empty = document.getElementById('no-history');
    if (empty) { empty.remove(); }
    const row = document.createElement('tr');
    const diff = Object.entries(change.changes).map(([n, c]) => n + ': ' + c.old + ' \\u2192 ' + c.new).join(', ');
    for (const text of [change.version, change.changed_at.slice(0, 19), change.actor, diff + ' \\u2014 ' + change.reason]) {
      const cell = document.createElement('td'); cell.textContent = text; row.appendChild(cell);
    }
    document.getElementById('history').prepend(row);
  }
  const num = (x) => (x === null || x === undefined) ? '\\u2014' : String(Number(Number(x).toPrecision(3)));
  const pct = (x) => (100 * x).toFixed(1) + ' %';
  const ranged = (r) => num(r.value) + ' (' + num(r.min) + '\\u2013' + num(r.max) + ')';
  function showPreview(data){
    const rows = [['requests replayed', String(data.replayed), String(data.replayed)]];
    for (const [key, label] of [['first_tier_shares', 'first tier'], ['final_route_shares', 'final route']]) {
      for (const tier of Object.keys(data.proposed[key])) {
        rows.push([label + ' ' + tier, pct(data.current[key][tier] || 0), pct(data.proposed[key][tier])]);
      }
    }
    for (const [key, label] of [['energy_wh', 'energy (Wh)'], ['net_avoided_energy_wh', 'net avoided (Wh)'],
                                ['avoided_large_calls', 'large calls avoided']]) {
      rows.push([label, ranged(data.current[key]), ranged(data.proposed[key])]);
    }
    const risk = data.under_routing;
    rows.push(['moved off large', '\\u2014', risk.moved_off_large + ' (' + pct(risk.moved_off_large_share) + ')']);
    const body = document.getElementById('whatif-rows');
    body.replaceChildren();
    for (const cells of rows) {
      const row = document.createElement('tr');
      cells.forEach((text, i) => {
        const cell = document.createElement('td'); cell.textContent = text;
        if (i > 0) { cell.className = 'n'; }
        row.appendChild(cell);
      });
      body.appendChild(row);
    }
    const p = data.thresholds.proposed;
    document.getElementById('whatif-note').textContent = 'Replayed with ' + Object.entries(p).map(([n, v]) => n + '=' + v)
      .join(', ') + '. Under-routing: ' + risk.reason + '.';
    document.getElementById('whatif').hidden = false;
  }
  document.getElementById('preview').addEventListener('click', async function(){
    const changes = {};
    let gates = false;
    for (const [name, value] of Object.entries(changed())) {
      const input = form.querySelector('input[data-threshold="' + CSS.escape(name) + '"]');
      if (input.dataset.replayable) { changes[name] = value; } else { gates = true; }
    }
    if (Object.keys(changes).length === 0) {
      show(gates ? 'only route.large and route.search can be previewed: a gate judges answers the ledger cannot replay'
                 : 'change route.large or route.search to preview', false);
      return;
    }
    try {
      showPreview(await send('POST', '/admin/whatif', {thresholds: changes, since: config.since}));
      show('preview of the last ' + config.hours + ' hours: nothing applied' + (gates ? ' (gate changes not previewed)' : ''), true);
    } catch (error) { show(String(error.message || error), false); }
  });
  form.addEventListener('submit', async function(event){
    event.preventDefault();
    const changes = changed();
    if (Object.keys(changes).length === 0) { show('nothing changed', false); return; }
    try {
      const data = await send('PUT', '/admin/thresholds', {thresholds: changes, reason: document.getElementById('reason').value});
      for (const input of form.querySelectorAll('input[data-threshold]')) {
        const entry = data.thresholds[input.dataset.threshold];
        if (entry) { input.value = entry.value; input.dataset.current = entry.value; }
      }
      document.getElementById('version').textContent = data.version;
      addHistoryRow(data.change);
      show('applied: version ' + data.version, true);
    } catch (error) { show(String(error.message || error), false); }
  });
})();
"""
