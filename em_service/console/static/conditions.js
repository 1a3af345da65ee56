/* The conditions editor: the current version and the draft on two maps; clicks on the draft map
 * collect corners for a new polygon, a hole or a circle's centre; a GeoJSON file adds zones.
 * The draft itself is the JSON in the form's textarea (the server checks it; nothing is saved here).
 * Names and ids are shown as text, never HTML. */
(function () {
  "use strict";
  var cur = document.getElementById("current-map");
  var dr = document.getElementById("draft-map");
  var box = document.getElementById("conditions");
  if (!cur || !dr || !box) { return; }
  var data = JSON.parse(dr.getAttribute("data-map"));

  function text(s) { var span = document.createElement("span"); span.textContent = s; return span; }

  function baseMap(el) {
    var map = L.map(el, { scrollWheelZoom: false }).setView([54, -2], 6);
    var url = el.getAttribute("data-tile-url");
    if (url) { L.tileLayer(url, { maxZoom: 19, attribution: el.getAttribute("data-tile-attribution") }).addTo(map); }
    return map;
  }

  function zoneLayer(z, cls) {
    var p = z.properties || {}, g = z.geometry || {};
    var style = { color: p.kind === "exclusion" ? "#d4351c" : "#1d70b8", weight: 2, fillOpacity: 0.15, className: "em-zone em-zone--" + p.kind + " " + cls };
    var layer = g.type === "Point"
      ? L.circle([g.coordinates[1], g.coordinates[0]], Object.assign({ radius: p.radius_m || 1 }, style))
      : L.geoJSON(g, { style: function () { return style; } });
    layer.bindTooltip(text((p.kind === "exclusion" ? "Exclusion zone " : "Inclusion zone ") + (p.name || p.zone_id || "")));
    return layer;
  }

  function curfewLayer(c, cls) {
    var g = c.geometry || {};
    var style = { color: "#4c2c92", weight: 2, fillOpacity: 0.2, className: "em-curfew " + cls };
    var layer = g.type === "Point"
      ? L.circle([g.coordinates[1], g.coordinates[0]], Object.assign({ radius: c.radius_m || 1 }, style))
      : L.geoJSON(g, { style: function () { return style; } });
    return layer.bindTooltip(text("Curfew address " + (c.curfew_id || "")));
  }

  function draw(map, group, doc, cls) {
    group.clearLayers();
    var layers = [];
    try {
      (doc.zones || []).forEach(function (z) { layers.push(zoneLayer(z, cls)); });
      (doc.curfews || []).forEach(function (c) { layers.push(curfewLayer(c, cls)); });
    } catch (e) { layers = []; }
    layers.forEach(function (l) { group.addLayer(l); });
    return layers;
  }

  function fit(map, layers) {
    var b = L.featureGroup(layers).getBounds();
    if (b.isValid()) { map.fitBounds(b.pad(0.3)); }
  }

  var curMap = baseMap(cur), drMap = baseMap(dr);
  var curGroup = L.featureGroup().addTo(curMap), drGroup = L.featureGroup().addTo(drMap);
  var curLayers = draw(curMap, curGroup, data.current, "em-current");
  var status = document.getElementById("draw-status");

  function draft() {
    try { return JSON.parse(box.value); } catch (e) { return null; }
  }
  function redraw() {
    var doc = draft();
    if (doc) { draw(drMap, drGroup, doc, "em-draft"); status.textContent = "Click the draft map to add corners (a polygon) or one centre (a circle)."; }
    else { status.textContent = "The draft is not valid JSON: fix the text below."; }
    return doc;
  }
  var first = redraw();
  var drLayers = drGroup.getLayers();
  fit(curMap, curLayers.length ? curLayers : drLayers);
  fit(drMap, drLayers.length ? drLayers : curLayers);
  if (data.problem && data.problem.lat !== undefined) {
    var where = [data.problem.lat, data.problem.lon];
    L.circleMarker(where, { radius: 10, color: "#d4351c", weight: 3, className: "em-problem" })
      .bindTooltip(text(data.problem.message), { permanent: true, direction: "top" }).addTo(drMap);
    drMap.setView(where, Math.max(drMap.getZoom(), 15));
  }
  box.addEventListener("input", redraw);

  var points = [], marks = L.featureGroup().addTo(drMap);
  drMap.on("click", function (e) {
    points.push([Number(e.latlng.lng.toFixed(6)), Number(e.latlng.lat.toFixed(6))]);
    marks.addLayer(L.circleMarker(e.latlng, { radius: 4, color: "#0b0c0c", className: "em-corner" }));
    status.textContent = points.length + " point" + (points.length === 1 ? "" : "s") + " chosen.";
  });
  function clear() { points = []; marks.clearLayers(); }
  function write(doc) { box.value = JSON.stringify(doc, null, 2); redraw(); clear(); }
  function props() {
    var p = { zone_id: document.getElementById("zone-id").value.trim(), kind: document.getElementById("zone-kind").value };
    var name = document.getElementById("zone-name").value.trim();
    if (name) { p.name = name; }
    return p;
  }
  function need(doc, n, what) {
    if (!doc) { status.textContent = "The draft is not valid JSON: fix the text first."; return false; }
    if (points.length < n) { status.textContent = "Click at least " + n + " point" + (n === 1 ? "" : "s") + " on the draft map for " + what + "."; return false; }
    return true;
  }
  document.getElementById("add-polygon").addEventListener("click", function () {
    var doc = draft();
    if (!need(doc, 3, "a polygon")) { return; }
    doc.zones = doc.zones || [];
    doc.zones.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [points.concat([points[0]])] }, properties: props() });
    write(doc);
  });
  document.getElementById("add-hole").addEventListener("click", function () {
    var doc = draft();
    if (!need(doc, 3, "a hole")) { return; }
    var polys = (doc.zones || []).filter(function (z) { return z.geometry && z.geometry.type === "Polygon"; });
    if (!polys.length) { status.textContent = "There is no polygon zone to cut a hole in."; return; }
    polys[polys.length - 1].geometry.coordinates.push(points.concat([points[0]]));
    write(doc);
  });
  document.getElementById("add-circle").addEventListener("click", function () {
    var doc = draft();
    if (!need(doc, 1, "a circle's centre")) { return; }
    var p = props();
    p.radius_m = Number(document.getElementById("zone-radius").value);
    doc.zones = doc.zones || [];
    doc.zones.push({ type: "Feature", geometry: { type: "Point", coordinates: points[points.length - 1] }, properties: p });
    write(doc);
  });
  document.getElementById("clear-points").addEventListener("click", clear);
  document.getElementById("geojson-file").addEventListener("change", function (e) {
    var file = e.target.files[0];
    if (!file) { return; }
    file.text().then(function (t) {
      var doc = draft(), gj;
      try { gj = JSON.parse(t); } catch (err) { status.textContent = "That file is not JSON."; return; }
      if (!doc) { status.textContent = "The draft is not valid JSON: fix the text first."; return; }
      var feats = gj.type === "FeatureCollection" ? gj.features : [gj];
      doc.zones = doc.zones || [];
      feats.forEach(function (f, i) {
        var p = Object.assign({}, f.properties || {});
        p.zone_id = p.zone_id || (file.name.replace(/[^A-Za-z0-9_.:-]/g, "_") + "-" + (i + 1));
        p.kind = p.kind || document.getElementById("zone-kind").value;
        doc.zones.push({ type: "Feature", geometry: f.geometry, properties: p });
      });
      write(doc);
      status.textContent = feats.length + " zone(s) added from " + file.name + ".";
    });
  });
})();
