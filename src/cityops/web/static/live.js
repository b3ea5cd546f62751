/* cityops live updates (docs/live.md): one EventSource per page on /live/events, reconnecting with back-off
   1 s → 30 s. Scripts subscribe with window.cityopsLive.on(topic, callback); after a reconnection every callback
   is called once with {reconnected: true} (events may have been missed meanwhile).
   Declarative use: an element with data-live-topics="values,alerts" receives the htmx event "cityops:refresh"
   (debounced) when one of those topics arrives — give it hx-trigger="…, cityops:refresh".
   An element with data-live-status (data-live-on / data-live-off texts) shows the state; it is the page's to place. */
(function () {
  "use strict";
  var FIRST_DELAY = 1000, MAX_DELAY = 30000, DEBOUNCE_MS = 400;
  var handlers = {};
  var source = null, openedTopics = "", delay = FIRST_DELAY, retryTimer = null, pending = null, lost = false;

  function topicList() { return Object.keys(handlers).sort().join(","); }

  function showStatus(state) {
    document.querySelectorAll("[data-live-status]").forEach(function (element) {
      element.textContent = state === "on" ? (element.dataset.liveOn || "") : (element.dataset.liveOff || "");
      element.dataset.state = state;
    });
  }

  function dispatch(topic, data) {
    (handlers[topic] || []).forEach(function (callback) {
      try { callback(data); } catch (error) { setTimeout(function () { throw error; }); }
    });
  }

  function connect() {
    retryTimer = null;
    var topics = topicList();
    if (!topics) return;
    if (source) source.close();
    openedTopics = topics;
    source = new EventSource("/live/events?topics=" + encodeURIComponent(topics));
    topics.split(",").forEach(function (topic) {
      source.addEventListener(topic, function (event) {
        var data = null;
        try { data = JSON.parse(event.data); } catch (error) { return; }
        dispatch(topic, data);
      });
    });
    source.onopen = function () {
      delay = FIRST_DELAY;
      showStatus("on");
      if (lost) {
        lost = false;
        Object.keys(handlers).forEach(function (topic) { dispatch(topic, { reconnected: true }); });
      }
    };
    source.onerror = function () {
      // The browser's own retry is replaced by ours, with back-off (a restarted server, a lost network).
      if (source) source.close();
      source = null;
      lost = true;
      showStatus("off");
      if (!retryTimer) retryTimer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_DELAY);
    };
  }

  function soon() {
    // Subscriptions made together share one connection, opened (or reopened with more topics) once.
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      if (topicList() !== openedTopics || (!source && !retryTimer)) connect();
    }, 0);
  }

  function on(topic, callback) {
    (handlers[topic] = handlers[topic] || []).push(callback);
    soon();
  }

  function debounced(element) {
    var timer = null;
    return function () {
      if (timer) return;
      timer = setTimeout(function () {
        timer = null;
        if (!document.body.contains(element)) return;
        if (window.htmx) window.htmx.trigger(element, "cityops:refresh");
        else element.dispatchEvent(new CustomEvent("cityops:refresh", { bubbles: true }));
      }, DEBOUNCE_MS);
    };
  }

  function wire() {
    document.querySelectorAll("[data-live-topics]").forEach(function (element) {
      var refresh = debounced(element);
      element.dataset.liveTopics.split(",").forEach(function (topic) {
        topic = topic.trim();
        if (topic) on(topic, refresh);
      });
    });
  }

  window.addEventListener("pagehide", function () { if (source) source.close(); });
  window.cityopsLive = { on: on };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
