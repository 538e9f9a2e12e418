// The reconlight workbench's only script: it sends a clerk's actions to the JSON API the
// CLI uses (with the item's version, so a clerk who acted first wins and the second is
// told), and swaps in a fresh copy of the page's live part when the store changes.
(function () {
  'use strict';
  var body = document.body;
  var status = document.getElementById('status');
  var refreshes = 0;

  function say(text, kind) {
    status.textContent = text;
    status.className = 'status ' + (kind || '');
  }

  function post(url, data, version) {
    var headers = { 'Content-Type': 'application/json' };
    if (version !== undefined) headers['If-Match'] = '"' + version + '"';
    return fetch(url, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(data),
      credentials: 'same-origin'
    }).then(function (r) {
      return r.text().then(function (text) {
        var payload = {};
        try { payload = JSON.parse(text); } catch (e) { payload = { error: text }; }
        return { ok: r.ok, status: r.status, payload: payload };
      });
    });
  }

  function fields(form) {
    var data = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === 'submit' || el.value === '') return;
      data[el.name] = el.name === 'installment' ? Number(el.value) : el.value;
    });
    return data;
  }

  // `own`: after this clerk's own action, whose form is done with.
  function refresh(own) {
    var live = document.getElementById('live');
    if (!live) return Promise.resolve();
    var typing = document.activeElement;
    if (!own && typing && live.contains(typing) && /^(INPUT|TEXTAREA)$/.test(typing.tagName) &&
        typing.type !== 'checkbox' && typing.value) {
      // Never throw away what a clerk is typing; the next change refreshes.
      return Promise.resolve();
    }
    return fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
        if (!fresh) return;
        var picked = {};
        live.querySelectorAll('input.pick:checked').forEach(function (c) { picked[c.value] = true; });
        var focused = document.activeElement && document.activeElement.id;
        fresh = document.importNode(fresh, true);
        live.replaceWith(fresh);
        fresh.querySelectorAll('input.pick').forEach(function (c) { c.checked = !!picked[c.value]; });
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        refreshes += 1;
        body.dataset.refreshes = String(refreshes);
      });
  }

  function report(r, form) {
    if (r.ok) {
      say(body.dataset.tDone, 'ok');
      if (form) form.reset();
      return refresh(true);
    }
    if (r.status === 409) {
      say(body.dataset.tConflict + ' (' + (r.payload.error || '') + ')', 'error');
    } else {
      say(body.dataset.tFailed + ': ' + (r.payload.error || r.status), 'error');
    }
    return Promise.resolve();
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (form.matches('form.action')) {
      ev.preventDefault();
      post('/api/v1/work-items/' + encodeURIComponent(form.dataset.item) + '/' +
           form.dataset.action, fields(form), form.dataset.version)
        .then(function (r) { return report(r, form); });
    } else if (form.matches('form.ack')) {
      ev.preventDefault();
      post('/api/v1/alerts/' + encodeURIComponent(form.dataset.alert) + '/ack',
           fields(form)).then(function (r) { return report(r, form); });
    } else if (form.id === 'bulk') {
      ev.preventDefault();
      var op = ev.submitter && ev.submitter.value === 'dismiss' ? 'dismiss' : 'assign';
      var ids = Array.prototype.map.call(
        document.querySelectorAll('input.pick:checked'), function (c) { return c.value; });
      var data = op === 'assign' ? { assignee: form.elements.assignee.value }
                                 : { reason: form.elements.reason.value };
      if (!ids.length || !(data.assignee || data.reason)) {
        say(body.dataset.tNone, 'error');
        return;
      }
      var done = 0;
      var failed = [];
      ids.reduce(function (chain, id) {
        return chain.then(function () {
          return post('/api/v1/work-items/' + encodeURIComponent(id) + '/' + op, data)
            .then(function (r) {
              if (r.ok) done += 1; else failed.push(id + ': ' + (r.payload.error || r.status));
            });
        });
      }, Promise.resolve()).then(function () {
        say(done + '/' + ids.length + ' ' + body.dataset.tDone +
            (failed.length ? ' ' + body.dataset.tFailed + ': ' + failed.join('; ') : ''),
            failed.length ? 'error' : 'ok');
        return refresh(true);
      });
    }
  });

  document.addEventListener('change', function (ev) {
    if (ev.target.id === 'pick-all') {
      document.querySelectorAll('input.pick').forEach(function (c) { c.checked = ev.target.checked; });
    }
  });

  if (document.getElementById('live') && window.EventSource) {
    var events = new EventSource('/events');
    events.addEventListener('change', function () { refresh(); });
    // A page left behind (or kept in the back-forward cache) gives its connection back:
    // browsers allow a handful per server.
    window.addEventListener('pagehide', function () { events.close(); });
  }
  body.dataset.ready = '1';
})();
