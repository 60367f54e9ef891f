/* gemwatch console: live updates (SSE), refreshing live pictures, and the zone editor.
   Plain browser JavaScript, no build step; served from the node itself (no CDN). */
"use strict";

(function () {
  const body = document.body;

  /* Server-Sent Events -> DOM events "gw:<kind>" on <body>; htmx elements listen with
     hx-trigger="gw:event from:body". The browser reconnects by itself. */
  function startStream() {
    const url = body.dataset.stream;
    const status = document.getElementById("live-status");
    if (!url || !window.EventSource) return;
    const source = new EventSource(url);
    source.onopen = function () { if (status) status.textContent = "Live updates on."; };
    source.onerror = function () { if (status) status.textContent = "Live updates reconnecting…"; };
    ["event", "status", "clip", "review", "zones"].forEach(function (kind) {
      source.addEventListener(kind, function (msg) {
        let data = {};
        try { data = JSON.parse(msg.data); } catch (e) { return; }
        body.dispatchEvent(new CustomEvent("gw:" + kind, { detail: data, bubbles: true }));
        if (kind === "status") {
          document.querySelectorAll('[data-state-of="' + data.camera + '"]').forEach(function (el) {
            el.textContent = data.state;
            el.className = "state state-" + data.state;
          });
        }
      });
    });
  }

  /* <img data-live=URL data-period=MS>: fetch the next picture only after the previous one has
     arrived, so a slow link never piles up requests. */
  function refreshLive(img) {
    if (img.dataset.liveBound) return;
    img.dataset.liveBound = "1";
    const period = Math.max(100, parseInt(img.dataset.period || "1000", 10));
    let timer = null;
    function next(delay) {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (!document.body.contains(img)) return;
        if (document.hidden) { next(period); return; }
        img.src = img.dataset.live + "?t=" + Date.now();
      }, delay);
    }
    img.addEventListener("load", function () { img.classList.remove("stale"); next(period); });
    img.addEventListener("error", function () { img.classList.add("stale"); next(2000); });
    if (img.complete) next(period);
  }

  /* The live page fetches each picture itself to read what is drawn on it (X-Gemwatch-Live)
     and lists it under the picture: store time, people, zones and their rule state. */
  function fetchLive(img) {
    if (img.dataset.liveBound) return;
    img.dataset.liveBound = "1";
    const period = Math.max(100, parseInt(img.dataset.period || "1000", 10));
    const target = document.getElementById(img.dataset.info);
    let shown = null;
    function describe(info) {
      const zones = Object.keys(info.zones || {}).map(function (id) {
        const z = info.zones[id];
        return id + ": " + z.people + " inside" + (z.alert ? " — ALERT " + z.alert : "");
      });
      return info.local + " · " + info.people.length + " people tracked" + (zones.length ? " · " + zones.join(" · ") : "");
    }
    function loop() {
      if (!document.body.contains(img)) return;
      if (document.hidden) { setTimeout(loop, period); return; }
      fetch(img.dataset.live + "?t=" + Date.now(), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          const info = r.headers.get("X-Gemwatch-Live");
          return r.blob().then(function (b) { return { blob: b, info: info }; });
        })
        .then(function (got) {
          const url = URL.createObjectURL(got.blob);
          const old = shown;
          shown = url;
          img.src = url;
          if (old) setTimeout(function () { URL.revokeObjectURL(old); }, 1000);
          img.classList.remove("stale");
          img.dataset.count = String(parseInt(img.dataset.count || "0", 10) + 1);
          if (target && got.info) {
            const info = JSON.parse(got.info);
            target.textContent = describe(info);
            img.dataset.people = String(info.people.length);
            img.dataset.frameTs = String(info.ts);
          }
          setTimeout(loop, period);
        })
        .catch(function (e) {
          img.classList.add("stale");
          if (target) target.textContent = "No live picture (" + e.message + "); retrying…";
          setTimeout(loop, 2000);
        });
    }
    loop();
  }

  function bindLive(root) {
    root.querySelectorAll("img[data-live]").forEach(function (img) {
      if (img.dataset.info) fetchLive(img); else refreshLive(img);
    });
  }

  /* ---------------------------------------------------------------- zone editor */
  function zoneEditor(root) {
    const svg = document.getElementById("zone-svg");
    const list = document.getElementById("zone-list");
    const idInput = document.getElementById("zone-id");
    const nameInput = document.getElementById("zone-name");
    const kindInput = document.getElementById("zone-kind");
    const dwellInput = document.getElementById("zone-dwell");
    const result = document.getElementById("zone-result");
    const NS = "http://www.w3.org/2000/svg";
    let zones = JSON.parse(document.getElementById("zones-data").textContent || "[]");
    let version = root.dataset.version || null;
    let selected = zones.length ? 0 : -1;
    let drawing = null; // points of the polygon being drawn
    let drag = null;

    function round(v) { return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000; }
    function point(evt) {
      const r = svg.getBoundingClientRect();
      return [round((evt.clientX - r.left) / r.width), round((evt.clientY - r.top) / r.height)];
    }
    function el(name, attrs) {
      const e = document.createElementNS(NS, name);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      return e;
    }
    function freeId() {
      let n = zones.length + 1;
      while (zones.some(function (z) { return z.id === "zone" + n; })) n++;
      return "zone" + n;
    }

    function draw() {
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      zones.forEach(function (z, i) {
        const poly = el("polygon", { points: z.polygon.map(function (p) { return p.join(","); }).join(" "), "data-index": i });
        if (i === selected) poly.classList.add("selected");
        svg.appendChild(poly);
        const label = el("text", { x: z.polygon[0][0] + 0.005, y: z.polygon[0][1] + 0.03 });
        label.textContent = (z.name || z.id) + " · " + z.kind;
        svg.appendChild(label);
        if (i === selected) {
          z.polygon.forEach(function (p, j) {
            svg.appendChild(el("circle", { cx: p[0], cy: p[1], r: 0.008, "data-index": i, "data-vertex": j }));
          });
        }
      });
      if (drawing && drawing.length) {
        svg.appendChild(el("polyline", { points: drawing.map(function (p) { return p.join(","); }).join(" ") }));
        drawing.forEach(function (p) { svg.appendChild(el("circle", { cx: p[0], cy: p[1], r: 0.006 })); });
      }
      list.innerHTML = "";
      zones.forEach(function (z, i) {
        const opt = document.createElement("option");
        opt.value = String(i);
        opt.textContent = z.id + " (" + z.kind + ")";
        opt.selected = i === selected;
        list.appendChild(opt);
      });
      const z = zones[selected];
      document.getElementById("zone-fields").disabled = !z;
      idInput.value = z ? z.id : "";
      nameInput.value = z && z.name ? z.name : "";
      kindInput.value = z ? z.kind : kindInput.value;
      dwellInput.value = z && z.loitering ? z.loitering.dwell_s : "";
    }

    function finish() {
      if (drawing && drawing.length >= 3) {
        zones.push({ id: freeId(), name: null, kind: kindInput.value || "counter", polygon: drawing, loitering: null });
        selected = zones.length - 1;
      }
      drawing = null;
      draw();
    }

    svg.addEventListener("mousedown", function (evt) {
      if (drawing) return;
      const t = evt.target;
      if (t.dataset && t.dataset.vertex !== undefined) {
        drag = { kind: "vertex", index: +t.dataset.index, vertex: +t.dataset.vertex };
      } else if (t.tagName === "polygon") {
        selected = +t.dataset.index;
        drag = { kind: "zone", index: selected, from: point(evt), orig: zones[selected].polygon.map(function (p) { return p.slice(); }) };
        draw();
      }
      evt.preventDefault();
    });
    window.addEventListener("mousemove", function (evt) {
      if (!drag) return;
      const p = point(evt);
      const z = zones[drag.index];
      if (drag.kind === "vertex") {
        z.polygon[drag.vertex] = p;
      } else {
        const dx = p[0] - drag.from[0], dy = p[1] - drag.from[1];
        z.polygon = drag.orig.map(function (q) { return [round(q[0] + dx), round(q[1] + dy)]; });
      }
      draw();
    });
    window.addEventListener("mouseup", function () { drag = null; });
    svg.addEventListener("click", function (evt) {
      if (!drawing) return;
      drawing.push(point(evt));
      draw();
    });
    svg.addEventListener("dblclick", function (evt) { if (drawing) { evt.preventDefault(); finish(); } });

    document.getElementById("zone-new").addEventListener("click", function () {
      drawing = [];
      result.textContent = "Click the picture to add corners, then Finish.";
      draw();
    });
    document.getElementById("zone-finish").addEventListener("click", finish);
    document.getElementById("zone-delete").addEventListener("click", function () {
      if (selected < 0) return;
      zones.splice(selected, 1);
      selected = Math.min(selected, zones.length - 1);
      draw();
    });
    list.addEventListener("change", function () { selected = +list.value; draw(); });
    idInput.addEventListener("input", function () { if (zones[selected]) { zones[selected].id = idInput.value.trim(); draw(); idInput.focus(); } });
    nameInput.addEventListener("input", function () { if (zones[selected]) zones[selected].name = nameInput.value.trim() || null; });
    kindInput.addEventListener("change", function () { if (zones[selected]) { zones[selected].kind = kindInput.value; draw(); } });
    dwellInput.addEventListener("input", function () {
      const z = zones[selected];
      if (!z) return;
      const v = parseFloat(dwellInput.value);
      z.loitering = isNaN(v) ? null : Object.assign({}, z.loitering || {}, { dwell_s: v });
    });

    function csrf() {
      const m = document.querySelector('meta[name="csrf-token"]');
      return m ? m.content : "";
    }
    function describe(detail) {
      if (typeof detail === "string") return detail;
      if (Array.isArray(detail)) {
        return detail.map(function (d) { return (d.path || (d.loc || []).join(".")) + ": " + (d.message || d.msg); }).join("; ");
      }
      return JSON.stringify(detail);
    }
    function send(method, url, done) {
      result.textContent = "…";
      result.className = "";
      fetch(url, {
        method: method,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ zones: zones, version: version }),
        credentials: "same-origin",
      }).then(function (r) {
        return r.json().then(function (data) { return { ok: r.ok, data: data }; });
      }).then(function (r) {
        if (!r.ok) { result.textContent = "Not saved: " + describe(r.data.detail); result.className = "error"; return; }
        done(r.data);
      }).catch(function (e) { result.textContent = "Failed: " + e; result.className = "error"; });
    }
    document.getElementById("zone-validate").addEventListener("click", function () {
      send("POST", "/api/v1/cameras/" + root.dataset.camera + "/zones/validate", function (problems) {
        if (problems.length) { result.textContent = describe(problems); result.className = "error"; }
        else { result.textContent = "The zones are valid."; }
      });
    });
    document.getElementById("zone-save").addEventListener("click", function () {
      finish();
      send("PUT", "/api/v1/cameras/" + root.dataset.camera + "/zones", function (data) {
        version = data.version;
        zones = data.zones;
        result.textContent = "Saved to the config file." + (data.applied ? " The camera uses the new zones from its next analysed frame." : " The camera is not running; the zones apply when it starts.");
        result.className = "saved";
        draw();
      });
    });
    draw();
  }

  function init() {
    startStream();
    bindLive(document);
    const editor = document.getElementById("zone-editor");
    if (editor) zoneEditor(editor);
    body.addEventListener("htmx:afterSettle", function () { bindLive(document); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
