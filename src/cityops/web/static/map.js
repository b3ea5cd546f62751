// The map (/map): Leaflet with no tile layer unless the province runs one, the province's boundary, communes shaded by
// an indicator, and clustered layers of tourist sites, cameras, citizen reports, incidents and firing alerts. Every
// text comes from the page (data-settings, translated on the server); every file from this app.
(function () {
  "use strict";
  const box = document.getElementById("map");
  if (!box || !window.L) return;
  const L = window.L;
  const cfg = JSON.parse(box.dataset.settings);
  const w = cfg.words;
  const lang = cfg.lang;
  const SHADES = ["#fff3c4", "#fdd17a", "#f39c4a", "#d9622b", "#a3321a"];
  const statusText = document.getElementById("map-status");

  const map = L.map(box, { zoomSnap: 0.25, minZoom: 6, maxZoom: 18, zoomControl: false, attributionControl: Boolean(cfg.tiles), keyboard: true });
  map.setView([18.9, 105.0], 8); // until the boundary arrives
  L.control.zoom({ zoomInTitle: w.zoom_in, zoomOutTitle: w.zoom_out }).addTo(map);
  if (cfg.tiles) L.tileLayer(cfg.tiles, { maxZoom: 18 }).addTo(map);

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  function pick(p, name) { return p[`${name}_${lang}`] || p[`${name}_vi`] || ""; }
  function row(label, value) { return value ? `<dt>${esc(label)}</dt><dd>${value}</dd>` : ""; }
  function link(href, text) { return href ? `<p><a href="${esc(href)}">${esc(text)}</a></p>` : ""; }

  // --- what each layer's marker and popup say ------------------------------------------------------------------
  const kinds = {
    communes: {
      status: (p) => (p.shade == null ? "none" : `shade-${p.shade}`),
      letter: () => "",
      title: (p) => pick(p, "name"),
      popup: (p) => `<h3>${esc(pick(p, "name"))}</h3><dl>${row(w.value, esc(p.value_text))}</dl>${link(p.link, w.board)}`,
    },
    tourist_sites: {
      status: () => "site",
      letter: () => "★",
      title: (p) => pick(p, "name"),
      popup: (p) => `<h3>${esc(pick(p, "name"))}</h3><dl>${row(w.commune, esc(pick(p, "commune")))}</dl>`,
    },
    cameras: {
      status: (p) => p.status,
      letter: () => "C",
      title: (p) => `${pick(p, "name")} — ${w.camera_status[p.status]}`,
      popup: (p) => `<h3>${esc(pick(p, "name"))}</h3>${p.thumbnail ? `<img src="${esc(p.thumbnail)}" alt="${esc(pick(p, "name"))}" width="240" height="135">` : ""}<dl>${row(w.status, `<strong>${esc(w.camera_status[p.status])}</strong>`)}${row(w.cameras, esc(`${p.online}/${p.total}`))}</dl>${link(p.link, w.board)}`,
    },
    reports: {
      status: (p) => p.status,
      letter: () => "P",
      title: (p) => `${p.tracking_code} — ${w.report_status[p.status]}`,
      popup: (p) => `<h3>${esc(p.tracking_code)}</h3><dl>${row(w.status, `<strong>${esc(w.report_status[p.status])}</strong>`)}${row(w.category, esc(pick(p, "category")))}${row(w.commune, esc(pick(p, "commune")))}</dl>${link(p.link, w.open)}`,
    },
    incidents: {
      status: (p) => p.status,
      letter: () => "S",
      title: (p) => `${p.title} — ${w.incident_status[p.status]}`,
      popup: (p) => `<h3>${esc(p.title)}</h3><dl>${row(w.status, `<strong>${esc(w.incident_status[p.status])}</strong>`)}${row(w.severity_word, esc(w.severity[p.severity]))}${row(w.agency, esc(pick(p, "agency")))}</dl>${link(p.link, w.open)}`,
    },
    alerts: {
      status: (p) => p.severity,
      letter: () => "!",
      title: (p) => `${pick(p, "title")} — ${w.severity[p.severity]}`,
      popup: (p) => `<h3>${esc(pick(p, "title"))}</h3><dl>${row(w.status, `<strong>${esc(w.alert_state)}</strong>`)}${row(w.severity_word, esc(w.severity[p.severity]))}${row(w.commune, esc(pick(p, "subject")))}</dl>${link(p.link, w.open)}`,
    },
  };

  function icon(name, p) {
    const kind = kinds[name];
    return L.divIcon({
      className: `map-marker map-${name} map-s-${kind.status(p)}`,
      html: `<span aria-hidden="true">${esc(kind.letter(p))}</span>`,
      iconSize: name === "communes" ? [16, 16] : [24, 24],
    });
  }

  // --- the layers --------------------------------------------------------------------------------------------
  const groups = {};
  const overlays = {};
  cfg.layers.forEach((name) => {
    groups[name] = name === "communes"
      ? L.layerGroup()
      : L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 40, chunkedLoading: true });
    overlays[`<span class="map-key map-key-${name}"></span>${esc(w.layers[name])}`] = groups[name];
    groups[name].addTo(map);
  });
  // Open on a desk; folded behind its button on a phone (the button is a link: Tab and Enter open it).
  const control = L.control.layers(null, overlays, { collapsed: window.matchMedia("(max-width: 640px)").matches }).addTo(map);
  const toggle = control.getContainer().querySelector(".leaflet-control-layers-toggle");
  if (toggle) { toggle.title = w.layers_button; toggle.setAttribute("aria-label", w.layers_button); }

  function query(name) {
    const params = new URLSearchParams({ lang });
    if (name === "communes" && cfg.chosen.indicator) params.set("indicator", cfg.chosen.indicator);
    if (name === "reports" && cfg.chosen.report_status) params.set("status", cfg.chosen.report_status);
    if (name === "incidents" && cfg.chosen.incident_status) params.set("status", cfg.chosen.incident_status);
    if (name === "alerts" && cfg.chosen.severity) params.set("severity", cfg.chosen.severity);
    return `${cfg.base}${name}.geojson?${params}`;
  }

  function legend(doc) {
    const holder = document.getElementById("map-legend");
    if (!holder) return;
    if (!doc.indicator) { holder.innerHTML = ""; return; }
    const items = (doc.classes || []).map((c, i) => `<li><span class="map-swatch" style="background:${SHADES[i]}"></span>${esc(c.label)}</li>`);
    items.push(`<li><span class="map-swatch map-swatch-none"></span>${esc(w.no_value)}</li>`);
    holder.innerHTML = `<h3>${esc(pick(doc.indicator, "name"))}${doc.indicator.unit ? ` (${esc(doc.indicator.unit)})` : ""}</h3><ul>${items.join("")}</ul>`;
  }

  const counts = {};
  function sayCounts() {
    if (!statusText) return;
    statusText.textContent = cfg.layers.map((name) => `${w.layers[name]}: ${counts[name] ?? "…"}`).join(" · ");
  }

  async function load(name) {
    try {
      const answer = await fetch(query(name), { credentials: "same-origin", headers: { Accept: "application/geo+json" } });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const doc = await answer.json();
      const markers = doc.features.map((f) => {
        const p = f.properties;
        const [lng, lat] = f.geometry.coordinates;
        const marker = L.marker([lat, lng], { icon: icon(name, p), title: kinds[name].title(p), alt: kinds[name].title(p), keyboard: true, zIndexOffset: name === "communes" ? 0 : 1000 });
        marker.bindPopup(kinds[name].popup(p));
        return marker;
      });
      groups[name].clearLayers();
      if (groups[name].addLayers) groups[name].addLayers(markers); else markers.forEach((m) => groups[name].addLayer(m));
      counts[name] = doc.features.length;
      if (name === "communes") legend(doc);
    } catch (error) {
      counts[name] = w.failed;
    }
    sayCounts();
  }

  async function boundary() {
    try {
      const answer = await fetch(cfg.boundary, { credentials: "same-origin" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const shape = L.geoJSON(await answer.json(), {
        style: { color: "#0b5394", weight: 2, fillColor: "#dbe7f3", fillOpacity: 0.5 },
        interactive: false,
      }).addTo(map);
      shape.bringToBack();
      map.fitBounds(shape.getBounds(), { padding: [8, 8] });
    } catch (error) {
      if (statusText) statusText.textContent = w.failed;
    }
  }

  boundary().then(() => cfg.layers.forEach(load));

  // Keyboard: Escape closes an open popup and gives the focus back to its marker.
  let opener = null;
  map.on("popupopen", (event) => {
    opener = event.popup._source && event.popup._source._icon ? event.popup._source._icon : null;
    const close = event.popup._closeButton;
    if (close) { close.setAttribute("aria-label", w.close); close.title = w.close; }
  });
  box.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !map._popup || !map.hasLayer(map._popup)) return;
    map.closePopup();
    if (opener) opener.focus();
    event.preventDefault();
  });

  // The filters apply at once (the form still works without JavaScript).
  const form = document.getElementById("map-filters");
  if (form) {
    const fields = { indicator: "communes", report_status: "reports", incident_status: "incidents", severity: "alerts" };
    Object.entries(fields).forEach(([field, name]) => {
      const select = form.elements[field];
      if (!select) return;
      select.addEventListener("change", () => {
        cfg.chosen[field] = select.value;
        const url = new URL(window.location.href);
        if (select.value) url.searchParams.set(field, select.value); else url.searchParams.delete(field);
        window.history.replaceState(null, "", url);
        load(name);
      });
    });
  }

  // Live: refresh the affected layer when something changes (at most once a second per layer).
  const timers = {};
  function soon(name) {
    if (timers[name]) return;
    timers[name] = window.setTimeout(() => { timers[name] = null; load(name); }, 1000);
  }
  if (window.cityopsLive && typeof window.cityopsLive.on === "function") {
    window.cityopsLive.on("values", () => { soon("communes"); soon("cameras"); });
    window.cityopsLive.on("alerts", () => soon("alerts"));
    window.cityopsLive.on("incidents", () => soon("incidents"));
    window.cityopsLive.on("reports", () => soon("reports"));
  }
})();
