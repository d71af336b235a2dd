// Live screens: one websocket per page, carrying server-rendered fragments that replace the
// page's elements by id. Reconnects forever (also after 1001); a red banner after 10 s without
// any message (the server sends a heartbeat every 5 s); countdowns and ages from the server's
// deadlines, corrected for the offset between the server's clock and this tablet's; alarm
// sounds from the Web Audio API in the IEC 60601-1-8 patterns.
(function () {
  "use strict";

  var STALE_AFTER_MS = 10000;
  var root = document.getElementById("live-root");
  if (!root || !root.dataset.live) return;

  var socket = null;
  var attempts = 0;
  var lastMessageAt = Date.now();
  var serverAnchor = null; // {server: ms, local: ms, speed: n}

  // --- server clock -------------------------------------------------------------------------

  function readServerClock() {
    var clock = document.getElementById("server-clock");
    if (!clock || !clock.getAttribute("datetime")) return;
    var server = Date.parse(clock.getAttribute("datetime"));
    if (isNaN(server)) return;
    var speed = parseFloat(clock.dataset.speed || root.dataset.speed || "1");
    serverAnchor = { server: server, local: Date.now(), speed: isNaN(speed) ? 1 : speed };
  }

  function serverNow() {
    if (!serverAnchor) return Date.now();
    return serverAnchor.server + (Date.now() - serverAnchor.local) * serverAnchor.speed;
  }
  window.stepwiseServerNow = serverNow;

  // --- swapping fragments ------------------------------------------------------------------

  function apply(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var incoming = Array.prototype.slice.call(template.content.children);
    incoming.forEach(function (element) {
      if (!element.id) return;
      element.removeAttribute("hx-swap-oob");
      var current = document.getElementById(element.id);
      if (current) {
        current.replaceWith(element);
        if (window.htmx) window.htmx.process(element);
      }
    });
    readServerClock();
    tick();
    document.dispatchEvent(new CustomEvent("stepwise:updated"));
  }

  // --- the connection ---------------------------------------------------------------------

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.live);
    var fresh = true;
    socket.onmessage = function (event) {
      lastMessageAt = Date.now();
      attempts = 0;
      apply(event.data);
      if (fresh) {
        fresh = false; // the first message after a (re)connect is the full snapshot
        setStale(false);
        document.body.dataset.live = "live";
      }
    };
    socket.onclose = function () {
      socket = null;
      if (document.body.dataset.live === "live") document.body.dataset.live = "reconnecting";
      attempts += 1;
      // Forever, whatever the close code (1001 when the server restarts, 1013 when too slow).
      setTimeout(connect, Math.min(5000, 250 * Math.pow(2, Math.min(attempts, 5))));
    };
    socket.onerror = function () {
      if (socket) socket.close();
    };
  }

  function setStale(stale) {
    var banner = document.getElementById("link-stale");
    if (banner) banner.hidden = !stale;
    document.body.classList.toggle("is-stale", stale);
    if (stale) document.body.dataset.live = "stale";
  }

  // --- countdowns, ages -------------------------------------------------------------------

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clockText(ms) {
    var negative = ms < 0;
    var total = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var text = (h ? h + ":" + two(m) : m) + ":" + two(s);
    return negative ? "+" + text : text;
  }

  function ageText(ms) {
    var minutes = Math.floor(ms / 60000);
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min ago";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min ago";
  }

  function tick() {
    var now = serverNow();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var deadline = Date.parse(el.dataset.countdown);
      if (isNaN(deadline)) return;
      var left = deadline - now;
      el.textContent = clockText(left > -1000 ? Math.max(left, 0) : left);
      el.classList.toggle("is-late", left < -1000);
    });
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var at = Date.parse(el.dataset.age);
      if (!isNaN(at)) el.textContent = ageText(Math.max(0, now - at));
    });
    if (Date.now() - lastMessageAt > STALE_AFTER_MS) setStale(true);
    if (window.stepwiseAlarmSound) window.stepwiseAlarmSound.update(now);
  }

  readServerClock();
  connect();
  setInterval(tick, 250);
  tick();
})();
