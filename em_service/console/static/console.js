/* EM console: small, dependency-free scripts of our own. No inline scripts (CSP 'self').
 * On every page: mark JS as available (GOV.UK Frontend styles).
 * On the alert queue: live updates from GET /api/v1/alerts/stream (Server-Sent Events over the
 * session cookie), resumed after the outbox event the page was rendered at. */
(function () {
  "use strict";
  document.body.classList.add("js-enabled", "govuk-frontend-supported");

  var table = document.getElementById("queue");
  if (!table) { return; }

  var body = document.getElementById("queue-body");
  var template = document.getElementById("row-template");
  var statusLine = document.getElementById("live-status");
  var tiers = JSON.parse(table.getAttribute("data-tiers"));
  var filters = JSON.parse(table.getAttribute("data-filters"));
  var rank = { critical: 0, urgent: 1, warning: 2 };
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London", weekday: "short", day: "2-digit", month: "short",
    year: "numeric", hour: "2-digit", minute: "2-digit", hour12: false
  });
  var sound = false;
  var notify = false;

  function tierOf(type) {
    if (tiers.critical.indexOf(type) >= 0) { return "critical"; }
    return tiers.urgent.indexOf(type) >= 0 ? "urgent" : "warning";
  }
  function label(type) {
    var s = type.replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function when(iso) { return fmt.format(new Date(iso)).replace(",", ""); }
  function key(row) {
    // Escalated and still open first (higher level first), then tier, then oldest.
    return [-Number(row.getAttribute("data-escalated") || 0), rank[row.getAttribute("data-tier")],
            row.getAttribute("data-occurred"), row.getAttribute("data-alert-id")];
  }
  function escalated(a) { return a.status === "open" ? (a.escalation_level || 0) : 0; }
  function before(a, b) {
    for (var i = 0; i < a.length; i++) {
      if (a[i] < b[i]) { return true; }
      if (a[i] > b[i]) { return false; }
    }
    return false;
  }
  function matches(a) {
    if (a.status === "closed" || a.suppressed) { return false; }
    if (filters.person && a.offender_id !== filters.person) { return false; }
    if (filters.type && a.type !== filters.type) { return false; }
    if (filters.severity && tierOf(a.type) !== filters.severity) { return false; }
    if (filters.status && a.status !== filters.status) { return false; }
    if (filters.since && new Date(a.occurred_at) < new Date(filters.since)) { return false; }
    return true;
  }
  function findRow(id) {
    var rows = body.querySelectorAll("tr.em-row");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-alert-id") === id) { return rows[i]; }
    }
    return null;
  }
  function tag(text, cls) {
    var s = document.createElement("strong");
    s.className = "govuk-tag " + cls;
    s.textContent = text;
    return s;
  }
  function fillStatus(cell, a) {
    cell.textContent = "";
    cell.appendChild(tag(a.status, "em-status em-status--" + a.status));
    if (a.escalation_level) {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(tag("escalated (level " + a.escalation_level + ")", "govuk-tag--red em-escalated"));
    }
    if (a.episode_end) {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(tag("ended — review", "em-ended"));
    }
  }
  function slot(row, name) { return row.querySelector('[data-slot="' + name + '"]'); }

  function build(a) {
    var row = template.content.firstElementChild.cloneNode(true);
    var tier = tierOf(a.type);
    var name = label(a.type);
    row.setAttribute("data-alert-id", a.alert_id);
    row.setAttribute("data-status", a.status);
    row.setAttribute("data-tier", tier);
    row.setAttribute("data-escalated", String(escalated(a)));
    row.setAttribute("data-occurred", new Date(a.occurred_at).toISOString().replace(".000Z", "+00:00"));
    row.setAttribute("data-person", a.offender_id);
    row.setAttribute("data-type", a.type);
    var box = slot(row, "select");
    box.value = a.alert_id;
    box.id = "sel-" + a.alert_id;
    box.disabled = a.status !== "open";
    slot(row, "select-label").setAttribute("for", box.id);
    slot(row, "select-text").textContent = "Select " + name + " for " + a.offender_id;
    var t = slot(row, "tier");
    t.textContent = tier;
    t.classList.add("em-tier--" + tier);
    var link = slot(row, "type");
    link.textContent = name;
    link.href = "/console/alerts/" + encodeURIComponent(a.alert_id);
    var person = slot(row, "person");
    person.textContent = a.offender_id;
    person.href = "/console/people/" + encodeURIComponent(a.offender_id);
    var time = slot(row, "when");
    time.setAttribute("datetime", a.occurred_at);
    time.textContent = when(a.occurred_at);
    fillStatus(slot(row, "status"), a);
    var form = slot(row, "ack-form");
    form.action = "/console/alerts/" + encodeURIComponent(a.alert_id) + "/acknowledge";
    if (a.status !== "open") { form.remove(); }
    slot(row, "close").href = "/console/alerts/" + encodeURIComponent(a.alert_id) + "#close";
    if (a.has_location) {
      var map = document.createElement("a");
      map.className = "govuk-link";
      map.href = "/console/alerts/" + encodeURIComponent(a.alert_id) + "#map";
      map.textContent = "Map";
      slot(row, "close").after(" · ", map);
    }
    return row;
  }

  function place(row) {
    var k = key(row);
    var rows = body.querySelectorAll("tr.em-row");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i] !== row && before(k, key(rows[i]))) { body.insertBefore(row, rows[i]); return; }
    }
    body.appendChild(row);
  }

  // Counts start from the server's (the table may show only the first rows) and follow events.
  var total = Number(table.getAttribute("data-total"));
  var unacknowledged = Number(table.getAttribute("data-unacknowledged"));

  function counts() {
    document.getElementById("queue-total").textContent = String(total);
    document.getElementById("unack-count").textContent = String(unacknowledged);
    document.getElementById("queue-empty").hidden = total > 0;
    document.title = (unacknowledged ? "(" + unacknowledged + ") " : "") + baseTitle;
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.2);
    } catch (e) { /* no audio: nothing to do */ }
  }

  function announce(a, what) {
    if (sound) { beep(); }
    if (notify && window.Notification && Notification.permission === "granted") {
      new Notification((what || "New " + tierOf(a.type) + " alert"), { body: label(a.type) + " — " + a.offender_id });
    }
  }

  function apply(ev) {
    var a = ev.alert;
    var row = findRow(a.alert_id);
    var was = row ? row.getAttribute("data-status") : null;
    var now = matches(a) ? a.status : null;
    if (row || ev.kind === "created") {
      total += (now ? 1 : 0) - (was ? 1 : 0);
      unacknowledged += (now === "open" ? 1 : 0) - (was === "open" ? 1 : 0);
    }
    if (!matches(a)) {
      if (row) { row.remove(); }
    } else if (!row) {
      row = build(a);
      place(row);
      if (ev.kind === "created") { announce(a); }
    } else {
      row.setAttribute("data-status", a.status);
      row.setAttribute("data-escalated", String(escalated(a)));
      fillStatus(row.querySelector(".em-status-cell"), a);
      if (ev.kind === "escalated") { place(row); announce(a, "Escalated: not acknowledged"); }
      if (a.status !== "open") {
        var f = row.querySelector("form");
        if (f) { f.remove(); }
        var box = row.querySelector('input[type="checkbox"]');
        if (box) { box.checked = false; box.disabled = true; }
      }
    }
    counts();
  }

  function connect() {
    var after = table.getAttribute("data-head");
    var source = new EventSource("/api/v1/alerts/stream?after=" + encodeURIComponent(after) + "&max_s=60");
    source.addEventListener("open", function () {
      statusLine.textContent = "Live: new alerts appear here without reloading.";
      table.setAttribute("data-live", "1");
    });
    source.addEventListener("alert", function (msg) {
      var ev = JSON.parse(msg.data);
      table.setAttribute("data-head", String(ev.event_id));
      apply(ev);
    });
    source.addEventListener("error", function () {
      table.removeAttribute("data-live");
      if (source.readyState === EventSource.CLOSED) {
        statusLine.textContent = "Live updates stopped (your session may have ended). Reload the page or sign in again.";
      } else {
        statusLine.textContent = "Reconnecting live updates…";
      }
    });
  }

  var notifyButton = document.getElementById("notify-toggle");
  if (window.Notification) {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function (p) {
        notify = p === "granted";
        notifyButton.textContent = notify ? "Notifications on" : "Notifications blocked by the browser";
      });
    });
  }
  var soundButton = document.getElementById("sound-toggle");
  soundButton.hidden = false;
  soundButton.addEventListener("click", function () {
    sound = !sound;
    soundButton.setAttribute("aria-pressed", String(sound));
    soundButton.textContent = sound ? "Sound: on" : "Sound: off";
  });

  counts();
  connect();
})();
