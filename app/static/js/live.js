// Live screens: one websocket per page, carrying server-rendered fragments that replace the
// page's elements by id. Reconnects forever (also after 1001); a red banner after 10 s without
// any message (the server sends a heartbeat every 5 s); countdowns and ages from the server's
// deadlines, corrected for the offset between the server's clock and this tablet's; the header
// clock ticks every second in the facility's time zone. When the sign-in behind the socket
// ends (close code 4401, or a handshake the server refuses), the page says so and stops
// reconnecting until someone signs in again here (bedside.js).
(function () {
  "use strict";

  var STALE_AFTER_MS = 10000;
  var SIGNED_OUT = 4401;
  var root = document.getElementById("live-root");
  if (!root || !root.dataset.live) return;

  var socket = null;
  var attempts = 0;
  var lastMessageAt = Date.now();
  var serverAnchor = null; // {server: ms, local: ms, speed: n}
  var signedOut = false;

  // --- server clock -------------------------------------------------------------------------

  // Anchored only to a clock the server has just sent (a heartbeat, or the page itself): other
  // fragments carry no time, and re-reading an old heartbeat's time as "now" would set every
  // countdown back by however long ago that heartbeat came (×speed on a training clock).
  function readServerClock(clock) {
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

  var zoneFormat = null;
  function clockFormat() {
    var clock = document.getElementById("server-clock");
    var zone = (clock && clock.dataset.zone) || "UTC";
    if (!zoneFormat || zoneFormat.zone !== zone) {
      try {
        zoneFormat = {
          zone: zone,
          format: new Intl.DateTimeFormat("en-GB", {
            timeZone: zone,
            hour: "2-digit",
            minute: "2-digit",
            second: "2-digit",
            hour12: false,
            timeZoneName: "short",
          }),
        };
      } catch (e) {
        zoneFormat = { zone: zone, format: null };
      }
    }
    return zoneFormat.format;
  }

  function showClock(now) {
    var clock = document.getElementById("server-clock");
    var format = clockFormat();
    if (!clock || !format || !serverAnchor) return;
    clock.textContent = format.format(new Date(now));
  }

  // --- swapping fragments ------------------------------------------------------------------

  function apply(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var incoming = Array.prototype.slice.call(template.content.children);
    var moves = null;
    incoming.forEach(function (element) {
      if (!element.id) return;
      if (element.id === "board-moves") {
        moves = element;
        return;
      }
      element.removeAttribute("hx-swap-oob");
      var current = document.getElementById(element.id);
      if (current) {
        current.replaceWith(element);
        if (window.htmx) window.htmx.process(element);
      } else if (element.hasAttribute("data-tile")) {
        // A session new to the board: its place comes with the moves below.
        var tiles = document.getElementById("board-tiles");
        if (tiles) {
          tiles.insertBefore(element, tiles.querySelector(".board-empty"));
          if (window.htmx) window.htmx.process(element);
        }
      }
      if (element.id === "server-clock") readServerClock(element);
    });
    if (moves) placeTiles(moves);
    tick();
    document.dispatchEvent(new CustomEvent("stepwise:updated"));
  }

  // A board update carries only the tiles that changed: "id:next" puts tile id just before
  // tile next ("id:" last), in board order; placed from the last, each lands before a tile
  // already where it belongs. data-gone lists the sessions that left the board.
  function placeTiles(moves) {
    var tiles = document.getElementById("board-tiles");
    if (!tiles) return;
    var empty = tiles.querySelector(".board-empty");
    (moves.dataset.gone || "").split(" ").forEach(function (id) {
      var gone = id && document.getElementById("tile-" + id);
      if (gone) gone.remove();
    });
    (moves.dataset.moves || "").split(" ").filter(Boolean).reverse().forEach(function (move) {
      var ids = move.split(":");
      var tile = document.getElementById("tile-" + ids[0]);
      var next = ids[1] ? document.getElementById("tile-" + ids[1]) : null;
      if (tile) tiles.insertBefore(tile, next && next.parentNode === tiles ? next : empty);
    });
    tiles.dataset.count = moves.dataset.count;
    if (empty) empty.hidden = tiles.querySelector("[data-tile]") !== null;
  }

  // --- the connection ---------------------------------------------------------------------

  function connect() {
    if (signedOut) return;
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
        document.dispatchEvent(new CustomEvent("stepwise:connected"));
      }
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === SIGNED_OUT) {
        endOfSignIn();
        return;
      }
      if (document.body.dataset.live === "live") document.body.dataset.live = "reconnecting";
      attempts += 1;
      if (fresh) {
        // Refused before any message: a restart, or a sign-in that ended. Ask which.
        stillSignedIn().then(function (yes) {
          if (yes) later();
          else endOfSignIn();
        });
        return;
      }
      later();
    };
    socket.onerror = function () {
      if (socket) socket.close();
    };
  }

  function later() {
    // Forever, whatever the close code (1001 when the server restarts, 1013 when too slow).
    setTimeout(connect, Math.min(5000, 250 * Math.pow(2, Math.min(attempts, 5))));
  }

  function stillSignedIn() {
    return fetch("/api/v1/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.status !== 401;
      })
      .catch(function () {
        return true; // no answer at all: the server is away, not the sign-in
      });
  }

  function endOfSignIn() {
    signedOut = true;
    document.body.dataset.live = "signed-out";
    document.dispatchEvent(new CustomEvent("stepwise:signed-out"));
  }

  document.addEventListener("stepwise:signed-in", function () {
    signedOut = false;
    attempts = 0;
    if (!socket) connect();
  });

  function setStale(stale) {
    var banner = document.getElementById("link-stale");
    if (banner) banner.hidden = !stale;
    document.body.classList.toggle("is-stale", stale);
    if (stale && !signedOut) document.body.dataset.live = "stale";
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
      // Durations of the protocol run on the session clock; a person's (the audio pause, its
      // deadline stored in session time) count down in real seconds: data-wall says which.
      var left = deadline - now;
      if (el.hasAttribute("data-wall")) left = left / speed();
      el.textContent = clockText(left > -1000 ? Math.max(left, 0) : left);
      el.classList.toggle("is-late", left < -1000);
    });
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var at = Date.parse(el.dataset.age);
      if (!isNaN(at)) el.textContent = ageText(Math.max(0, now - at));
    });
    showClock(now);
    if (Date.now() - lastMessageAt > STALE_AFTER_MS && !signedOut) setStale(true);
    if (window.stepwiseAlarmSound) window.stepwiseAlarmSound.update(now);
  }

  function speed() {
    return serverAnchor ? serverAnchor.speed : 1;
  }
  window.stepwiseClockSpeed = speed;

  readServerClock(document.getElementById("server-clock"));
  connect();
  setInterval(tick, 250);
  tick();
})();
