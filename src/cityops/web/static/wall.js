/* cityops — the video wall: rotate each tile's views, refresh them (live events, and every 30 s as a fallback),
   keep the clock, and reload the whole page after a server restart and once a night. Runs for days unattended:
   content is replaced (never appended), each tile has exactly one interval, and fetches never overlap. */
(function () {
  "use strict";
  var body = document.body;
  var REFRESH = (parseInt(body.dataset.refresh, 10) || 30);
  var HEARTBEAT = (parseInt(body.dataset.heartbeat, 10) || 30) * 1000;
  var started = body.dataset.started;
  var loadedAt = Date.now();
  var tiles = [];

  function Tile(section) {
    this.el = section;
    this.position = section.dataset.position;
    this.views = parseInt(section.dataset.views, 10) || 1;
    this.rotate = Math.max(1, parseInt(section.dataset.rotate, 10) || 30);
    this.slot = section.querySelector(".tile-slot");
    this.view = 0;
    this.elapsed = 0;
    this.wanted = false; /* an event asked for a refresh: done at the next tick (debounce) */
    this.busy = null;    /* the AbortController of the fetch in flight */
    this.timer = null;
    this.start();
  }
  Tile.prototype.start = function () {
    var self = this;
    if (this.timer !== null) { clearInterval(this.timer); }
    this.timer = setInterval(function () { self.tick(); }, 1000);
  };
  Tile.prototype.tick = function () {
    this.elapsed += 1;
    if (this.views > 1 && this.elapsed % this.rotate === 0) {
      this.load((this.view + 1) % this.views);
    } else if (this.wanted || this.elapsed % REFRESH === 0) {
      this.load(this.view);
    }
  };
  Tile.prototype.body = function () { return this.slot.querySelector(".tile-body"); };
  Tile.prototype.concerns = function (topic, payload) {
    var current = this.body();
    if (!current) { return true; }
    var topics = (current.dataset.topics || "").split(" ");
    if (topics.indexOf(topic) < 0) { return false; }
    var domains = (current.dataset.domains || "").split(" ").filter(Boolean);
    if (topic !== "values" || !domains.length || !payload || !payload.indicators) { return true; }
    return payload.indicators.some(function (code) { return domains.indexOf(String(code).split(".")[0]) >= 0; });
  };
  Tile.prototype.load = function (index) {
    var self = this;
    if (this.busy) { return; } /* one fetch at a time; the next tick tries again */
    this.wanted = false;
    var controller = new AbortController();
    var guard = setTimeout(function () { controller.abort(); }, 20000);
    this.busy = controller;
    fetch("/wall/tile/" + this.position + "/content?view=" + index, {
      credentials: "same-origin", cache: "no-store", signal: controller.signal,
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok || response.redirected) { throw new Error("tile " + response.status); }
      return response.text();
    }).then(function (html) {
      self.slot.innerHTML = html; /* replace: the old content and its nodes go */
      var shown = self.body();
      self.view = shown ? (parseInt(shown.dataset.view, 10) || 0) : index;
      self.el.classList.remove("offline");
    }).catch(function () {
      self.el.classList.add("offline");
    }).then(function () {
      clearTimeout(guard);
      self.busy = null;
    });
  };

  Array.prototype.forEach.call(document.querySelectorAll(".tile"), function (section) {
    tiles.push(new Tile(section));
  });
  var offlineText = body.dataset.offline || "";
  tiles.forEach(function (tile) { tile.el.setAttribute("data-offline", offlineText); });

  /* Live events: ask the tiles concerned to refresh at their next tick. */
  function subscribe() {
    if (!window.cityopsLive || typeof window.cityopsLive.on !== "function") { return false; }
    ["values", "alerts", "incidents", "reports"].forEach(function (topic) {
      window.cityopsLive.on(topic, function (payload) {
        if (payload && payload.reconnected) { beatNow(); } /* the stream came back: a restart? ask at once */
        tiles.forEach(function (tile) { if (tile.concerns(topic, payload)) { tile.wanted = true; } });
      });
    });
    return true;
  }
  if (!subscribe()) { window.addEventListener("load", subscribe, { once: true }); }

  /* The clock: one timer for the page. */
  var clocks = document.querySelectorAll(".wall-clock");
  function showTime() {
    var now = new Date();
    var text = String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0");
    Array.prototype.forEach.call(clocks, function (clock) { if (clock.textContent !== text) { clock.textContent = text; } });
  }
  if (clocks.length) { showTime(); setInterval(showTime, 5000); }

  /* Heartbeat: reload after a restart (another start id) or when the server comes back after failing; back off
     while it is down; and reload once a night (between 03:00 and 04:00, after at least 12 hours) as a safety net. */
  var failing = false;
  var wait = HEARTBEAT;
  var next = null;   /* the timer of the next beat */
  var beating = false;
  function reload() { window.location.reload(); }
  function beatNow() {
    if (beating) { return; }
    if (next !== null) { clearTimeout(next); next = null; }
    beat();
  }
  function beat() {
    beating = true;
    next = null;
    var controller = new AbortController();
    var guard = setTimeout(function () { controller.abort(); }, 10000);
    fetch("/wall/heartbeat", { credentials: "same-origin", cache: "no-store", signal: controller.signal })
      .then(function (response) {
        if (response.redirected) { reload(); throw new Error("logged out"); } /* shows the log-in page */
        if (!response.ok) { throw new Error("heartbeat " + response.status); }
        return response.json();
      })
      .then(function (answer) {
        if (failing || (answer.started && answer.started !== started)) { reload(); return; }
        wait = HEARTBEAT;
      })
      .catch(function () {
        wait = failing ? Math.min(wait * 2, 5 * 60 * 1000) : 5000;
        failing = true;
      })
      .then(function () {
        clearTimeout(guard);
        beating = false;
        var hour = new Date().getHours();
        if (hour === 3 && Date.now() - loadedAt > 12 * 3600 * 1000) { reload(); return; }
        next = setTimeout(beat, wait);
      });
  }
  next = setTimeout(beat, HEARTBEAT);
})();
