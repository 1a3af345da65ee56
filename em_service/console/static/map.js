/* EM console maps (Leaflet). Configuration comes from data attributes; with no tile URL the map
 * is a plain background and every vector layer is still drawn (fully usable offline). */
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London", weekday: "short", day: "2-digit", month: "short",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  var GAP_COLOUR = { short: "#00703c", medium: "#f47738", long: "#d4351c" };

  // Tooltips get DOM text, never HTML: zone names and labels are user-supplied.
  function text(s) {
    var span = document.createElement("span");
    span.textContent = s;
    return span;
  }

  function baseMap(el) {
    var map = L.map(el, { scrollWheelZoom: false }).setView([54, -2], 6);
    var url = el.getAttribute("data-tile-url");
    if (url) {
      L.tileLayer(url, { maxZoom: 19, attribution: el.getAttribute("data-tile-attribution") }).addTo(map);
    }
    return map;
  }

  function fit(map, layers) {
    var group = L.featureGroup(layers);
    var bounds = group.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds.pad(0.2)); } else { map.setView([54, -2], 6); }
  }

  function area(geometry, radius, style) {
    if (geometry.type === "Point") {
      var c = geometry.coordinates;
      return L.circle([c[1], c[0]], Object.assign({ radius: radius }, style));
    }
    return L.geoJSON(geometry, Object.assign({ style: function () { return style; } }, style));
  }

  function alertMap(el) {
    var data = JSON.parse(el.getAttribute("data-map"));
    var map = baseMap(el);
    var layers = [L.circleMarker([data.lat, data.lon], { radius: 6, color: "#d4351c", className: "em-alert-place" })];
    if (data.accuracy_m) {
      layers.push(L.circle([data.lat, data.lon], { radius: data.accuracy_m, color: "#d4351c", weight: 1 }));
    }
    layers.forEach(function (l) { l.addTo(map); });
    map.setView([data.lat, data.lon], 16);
  }

  function personMap(el) {
    var data = JSON.parse(el.getAttribute("data-map"));
    var map = baseMap(el);
    var layers = [];
    data.zones.forEach(function (z) {
      var exclusion = z.properties.kind === "exclusion";
      var layer = area(z.geometry, z.properties.radius_m, {
        color: exclusion ? "#d4351c" : "#1d70b8", weight: 2, fillOpacity: 0.15,
        className: "em-zone em-zone--" + z.properties.kind
      });
      layer.bindTooltip(text((exclusion ? "Exclusion zone " : "Inclusion zone ") + (z.properties.name || z.properties.zone_id)));
      layers.push(layer);
    });
    data.curfews.forEach(function (c) {
      var layer = area(c.geometry, c.radius_m, { color: "#4c2c92", weight: 2, fillOpacity: 0.2, className: "em-curfew" });
      layer.bindTooltip(text("Curfew address " + c.curfew_id));
      layers.push(layer);
    });
    if (data.last_fix) {
      var f = data.last_fix;
      layers.push(L.circle([f.lat, f.lon], { radius: f.acc, color: "#0b0c0c", weight: 1, fillOpacity: 0.1 }));
      layers.push(L.circleMarker([f.lat, f.lon], { radius: 6, color: "#0b0c0c", fillOpacity: 1, className: "em-last-fix" })
        .bindTooltip(text("Last fix " + fmt.format(new Date(f.t)))));
    }
    layers.forEach(function (l) { l.addTo(map); });
    var trailLayers = [];
    if (data.trail) {
      var pts = data.trail;
      for (var i = 0; i + 1 < pts.length; i++) {
        var g = pts[i].gap;
        trailLayers.push(L.polyline([[pts[i].lat, pts[i].lon], [pts[i + 1].lat, pts[i + 1].lon]], {
          color: GAP_COLOUR[g], weight: 4, className: "em-gap em-gap-" + g
        }));
      }
      pts.forEach(function (p) {
        var dot = L.circleMarker([p.lat, p.lon], { radius: 3, color: "#0b0c0c", weight: 1, className: "em-fix" });
        var ring = L.circle([p.lat, p.lon], { radius: p.acc, color: "#505a5f", weight: 1, fillOpacity: 0.1, interactive: false, className: "em-accuracy" });
        dot.on("mouseover", function () { ring.addTo(map); });
        dot.on("mouseout", function () { ring.remove(); });
        dot.bindTooltip(text(fmt.format(new Date(p.t)) + " ±" + Math.round(p.acc) + " m"));
        trailLayers.push(dot);
      });
      (data.trail_alerts || []).forEach(function (a) {
        trailLayers.push(L.circleMarker([a.lat, a.lon], { radius: 8, color: "#d4351c", weight: 3, className: "em-trail-alert" })
          .bindTooltip(text(a.type + " " + fmt.format(new Date(a.t)))));
      });
      trailLayers.forEach(function (l) { l.addTo(map); });
      playback(map, pts);
    }
    fit(map, layers.concat(trailLayers));
  }

  function playback(map, pts) {
    var slider = document.getElementById("playback");
    var out = document.getElementById("playback-time");
    if (!slider || !pts.length) { return; }
    var marker = L.circleMarker([pts[0].lat, pts[0].lon], { radius: 8, color: "#1d70b8", fillOpacity: 0.8, className: "em-playhead" }).addTo(map);
    function show() {
      var p = pts[Number(slider.value)];
      marker.setLatLng([p.lat, p.lon]);
      out.textContent = fmt.format(new Date(p.t));
    }
    slider.addEventListener("input", show);
    show();
  }

  var CONF_COLOUR = { at_scene: "#d4351c", passed_by: "#f47738", near_scene: "#1d70b8" };

  function sceneMap(el) {
    var data = JSON.parse(el.getAttribute("data-map"));
    var map = baseMap(el);
    var sc = data.scene;
    var layers = [L.circle([sc.lat, sc.lon], { radius: sc.radius_m, color: "#4c2c92", weight: 3, fillOpacity: 0.1, className: "em-scene" })
      .bindTooltip(text("Scene, " + Math.round(sc.radius_m) + " m"))];
    data.matches.forEach(function (m) {
      var colour = CONF_COLOUR[m.confidence] || "#0b0c0c";
      var inside = m.fixes.filter(function (f) { return f.in; });
      for (var i = 0; i + 1 < inside.length; i++) {
        layers.push(L.polyline([[inside[i].lat, inside[i].lon], [inside[i + 1].lat, inside[i + 1].lon]], { color: colour, weight: 3, className: "em-trail" }));
      }
      m.fixes.forEach(function (f) {
        layers.push(L.circleMarker([f.lat, f.lon], { radius: 3, color: f.in ? colour : "#505a5f", weight: 1, fillOpacity: f.in ? 0.8 : 0, className: "em-fix" })
          .bindTooltip(text(m.offender_id + " " + fmt.format(new Date(f.t)) + " ±" + Math.round(f.acc) + " m")));
      });
      m.segments.forEach(function (s) {
        layers.push(L.polyline(s.points, { color: colour, weight: 3, className: "em-passby" })
          .bindTooltip(text(m.offender_id + " interpolated pass-by, " + s.closest_m + " m")));
      });
      if (m.closest) {
        layers.push(L.circleMarker([m.closest.lat, m.closest.lon], { radius: 7, color: "#d4351c", weight: 3, fillOpacity: 0.9, className: "em-closest" })
          .bindTooltip(text(m.offender_id + " closest " + m.closest.m + " m at " + fmt.format(new Date(m.closest.t))), { permanent: true, direction: "right" }));
      }
    });
    layers.forEach(function (l) { l.addTo(map); });
    fit(map, layers);
  }

  // The new-scene form: a click on the map fills lat/lon (and clears the grid reference and
  // easting/northing).
  function pickerMap(el) {
    var map = baseMap(el);
    var lat = document.getElementById("lat"), lon = document.getElementById("lon");
    var radius = document.getElementById("radius_m");
    var circle = null;
    function show() {
      var la = parseFloat(lat.value), lo = parseFloat(lon.value);
      if (isNaN(la) || isNaN(lo)) { return; }
      var r = parseFloat(radius.value) || JSON.parse(el.getAttribute("data-map")).default_radius_m;
      if (circle) { circle.remove(); }
      circle = L.circle([la, lo], { radius: r, color: "#4c2c92", className: "em-scene" }).addTo(map);
    }
    map.on("click", function (e) {
      lat.value = e.latlng.lat.toFixed(6);
      lon.value = e.latlng.lng.toFixed(6);
      document.getElementById("grid_ref").value = "";
      document.getElementById("easting").value = "";
      document.getElementById("northing").value = "";
      show();
    });
    [lat, lon, radius].forEach(function (i) { i.addEventListener("change", show); });
    show();
    if (circle) { map.setView(circle.getLatLng(), 15); }
  }

  // Beside each local date and time: its UTC offset in UK time (GMT or BST), as the server reads it.
  function offsetHints() {
    var off = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", timeZoneName: "longOffset" });
    ["start", "end"].forEach(function (k) {
      var d = document.getElementById(k + "_date"), t = document.getElementById(k + "_time");
      var out = document.getElementById(k + "_offset_hint");
      function show() {
        var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(d.value), h = /^(\d{2}):(\d{2})$/.exec(t.value);
        if (!m || !h) { out.textContent = ""; return; }
        // The wall time read as UTC: right except within an hour of a change (the page of the
        // saved scene shows the offset the server used).
        var utc = Date.UTC(+m[1], +m[2] - 1, +m[3], +h[1], +h[2]);
        var name = off.formatToParts(new Date(utc)).filter(function (p) { return p.type === "timeZoneName"; })[0];
        out.textContent = "UK time, " + (name ? name.value.replace("GMT", "UTC") || "UTC" : "");
      }
      [d, t].forEach(function (i) { i.addEventListener("input", show); });
      show();
    });
  }

  var a = document.getElementById("alert-map");
  if (a) { alertMap(a); }
  var p = document.getElementById("person-map");
  if (p) { personMap(p); }
  var sm = document.getElementById("scene-map");
  if (sm) { sceneMap(sm); }
  var pm = document.getElementById("place-map");
  if (pm) { pickerMap(pm); offsetHints(); }
})();
