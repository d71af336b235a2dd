// Bedside and board actions. Writes go over HTTP to the JSON API (never over the websocket),
// each with a client-made Idempotency-Key that is kept for resends: a save repeated after a
// dropped connection is answered with the first answer and never saved twice. What the write
// changed arrives on every screen through the websocket.
//
// Nothing the nurse enters is lost: a save the server cannot be reached for waits in an outbox
// on this tablet (it survives a reload) and is sent with its original key when the connection
// returns; a save refused because the sign-in ended waits for the password, asked for in place,
// and is then sent with the same key.
(function () {
  "use strict";

  var QUICK_RETRIES = 2;
  var OUTBOX = "stepwise-outbox";
  var FLUSH_EVERY_MS = 5000;

  // --- small things ----------------------------------------------------------------------

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function setCsrfToken(token) {
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": token }));
    document.querySelectorAll('input[name="csrf_token"]').forEach(function (input) {
      input.value = token;
    });
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b < 16 ? "0" : "") + b.toString(16);
      })
      .join("");
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function detailText(data) {
    var detail = data && data.detail;
    if (Array.isArray(detail)) {
      return detail
        .map(function (d) {
          return (d.loc ? d.loc.slice(1).join(".") + ": " : "") + d.msg;
        })
        .join("; ");
    }
    return detail || "Refused.";
  }

  function toast(text, kind) {
    var el = document.getElementById("toast");
    if (!el) {
      el = document.createElement("div");
      el.id = "toast";
      el.setAttribute("role", "status");
      document.body.appendChild(el);
    }
    el.textContent = text;
    el.className = "toast toast-" + (kind || "ok");
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(
      function () {
        el.hidden = true;
      },
      kind === "error" ? 12000 : 4000
    );
  }

  function currentVersion() {
    var panel = document.getElementById("status-panel");
    return panel ? parseInt(panel.dataset.version, 10) : null;
  }

  // --- the facility's time zone ----------------------------------------------------------

  function facilityZone() {
    var clock = document.getElementById("server-clock");
    return (clock && clock.dataset.zone) || "UTC";
  }

  // How far the zone's wall clock is ahead of UTC at instant `ms`.
  function zoneOffset(ms, zone) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    })
      .formatToParts(new Date(ms))
      .forEach(function (p) {
        parts[p.type] = p.value;
      });
    var wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
    return wall - Math.floor(ms / 1000) * 1000;
  }

  // A time typed in a datetime-local field is a time of the facility's zone, whatever zone
  // this tablet is set to.
  function localTimeToIso(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || "");
    if (!m) return null;
    var guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    var zone = facilityZone();
    try {
      var at = guess - zoneOffset(guess, zone);
      at = guess - zoneOffset(at, zone); // once more across a daylight-saving change
      return new Date(at).toISOString();
    } catch (e) {
      return new Date(guess).toISOString();
    }
  }

  // --- the outbox: saves waiting for the server ------------------------------------------

  function readOutbox() {
    try {
      var items = JSON.parse(localStorage.getItem(OUTBOX) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function writeOutbox(items) {
    try {
      localStorage.setItem(OUTBOX, JSON.stringify(items));
    } catch (e) {
      /* storage full or off: the items stay in this page's memory below */
    }
    memoryOutbox = items;
    showOutbox();
  }

  var memoryOutbox = readOutbox();

  function outbox() {
    var stored = readOutbox();
    return stored.length || !memoryOutbox.length ? stored : memoryOutbox;
  }

  function enqueue(url, body, key, label) {
    var items = outbox().filter(function (item) {
      return item.key !== key;
    });
    items.push({ url: url, body: body, key: key, label: label || "entry", at: new Date().toISOString() });
    writeOutbox(items);
  }

  function dequeue(key) {
    writeOutbox(
      outbox().filter(function (item) {
        return item.key !== key;
      })
    );
  }

  function showOutbox() {
    var el = document.getElementById("queue-state");
    if (!el) return;
    var count = outbox().length;
    el.hidden = count === 0;
    el.textContent = count ? "Waiting to send (" + count + ")" : "";
  }

  var flushing = false;
  async function flushOutbox() {
    if (flushing || signedOut) return;
    var items = outbox();
    if (!items.length) return;
    flushing = true;
    try {
      for (var i = 0; i < items.length; i++) {
        var item = items[i];
        var answer = await send(item.url, item.body, item.key);
        if (answer.status === 0 || answer.status === 503) break; // still away: keep them all
        if (answer.status === 401) {
          showSignedOut();
          break;
        }
        dequeue(item.key);
        if (answer.status >= 200 && answer.status < 300) {
          toast("Sent: " + item.label + " (entered " + timeOf(item.at) + ").");
        } else if (answer.status === 422 && answer.data.needs_confirmation) {
          askToConfirm(item, answer.data);
        } else {
          toast("Not recorded: " + item.label + " — " + detailText(answer.data), "error");
        }
      }
    } finally {
      flushing = false;
    }
  }

  function timeOf(iso) {
    try {
      return new Intl.DateTimeFormat("en-GB", {
        timeZone: facilityZone(),
        hour: "2-digit",
        minute: "2-digit",
        hour12: false,
      }).format(new Date(iso));
    } catch (e) {
      return iso;
    }
  }

  // A queued set that meets alarm criteria still needs its second tap.
  function askToConfirm(item, data) {
    var box = document.createElement("div");
    box.className = "outbox-confirm";
    box.setAttribute("role", "alertdialog");
    var title = document.createElement("p");
    title.className = "confirm-title";
    title.textContent = "The " + item.label + " entered at " + timeOf(item.at) + " need confirming before they are saved:";
    box.appendChild(title);
    var list = document.createElement("ul");
    (data.needs_confirmation || []).concat(data.far_from_baseline || []).forEach(function (f) {
      var li = document.createElement("li");
      li.textContent = (f.priority ? f.priority + ": " : "") + f.message;
      list.appendChild(li);
    });
    box.appendChild(list);
    var confirm = document.createElement("button");
    confirm.type = "button";
    confirm.className = "button button-danger";
    confirm.textContent = "Confirm and save";
    confirm.addEventListener("click", async function () {
      var body = Object.assign({}, item.body, { confirm: true });
      var answer = await post(item.url, body, newKey(), item.label);
      box.remove();
      if (answer.status >= 200 && answer.status < 300) toast("Saved.");
      else if (answer.status !== "queued") toast(detailText(answer.data), "error");
    });
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "button button-quiet";
    discard.textContent = "Discard";
    discard.addEventListener("click", function () {
      box.remove();
    });
    box.appendChild(confirm);
    box.appendChild(discard);
    (document.getElementById("pinned-top") || document.body).appendChild(box);
  }

  // --- sending ---------------------------------------------------------------------------

  async function send(url, body, key) {
    try {
      var response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRF-Token": csrfToken(),
          "Idempotency-Key": key,
        },
        body: JSON.stringify(body),
      });
      var data = {};
      try {
        data = await response.json();
      } catch (e) {
        data = { detail: "the server answered " + response.status };
      }
      return { status: response.status, data: data };
    } catch (error) {
      return { status: 0, data: { detail: String(error) } };
    }
  }

  // One request, retried a few times quickly while the connection is down or the server
  // cannot save now (503).
  async function sendRetrying(url, body, key) {
    var answer = null;
    for (var attempt = 0; attempt <= QUICK_RETRIES; attempt++) {
      answer = await send(url, body, key);
      if (answer.status !== 0 && answer.status !== 503) break;
      if (attempt < QUICK_RETRIES) await sleep(500 * Math.pow(2, attempt));
    }
    return answer;
  }

  // POST JSON. A dropped connection or a server that cannot save now (503) keeps the request
  // in the outbox; an ended sign-in keeps it until the password is given again. Either way it
  // goes later with the same key: recorded once.
  async function post(url, body, key, label) {
    if (signedOut) return waitForSignIn(url, body, key, label);
    var answer = await sendRetrying(url, body, key);
    if (answer.status === 401) {
      showSignedOut();
      return waitForSignIn(url, body, key, label);
    }
    if (answer.status === 0 || answer.status === 503) {
      enqueue(url, body, key, label);
      return { status: "queued", data: { detail: "kept on this tablet" } };
    }
    return answer;
  }

  // A request that carries a co-signer's password goes now or not at all: it is never kept
  // on this tablet (neither in the outbox in the browser's storage nor until a sign-in).
  async function postNow(url, body, key) {
    var notSent = "The second clinician signs again when it is back.";
    if (signedOut) return { status: 0, data: { detail: "Signed out: not sent. " + notSent } };
    var answer = await sendRetrying(url, body, key);
    if (answer.status === 401) {
      showSignedOut();
      answer.data = { detail: "Signed out: not sent. " + notSent };
    }
    if (answer.status === 0 || answer.status === 503) {
      answer.data = { detail: "No connection to the server: not sent. " + notSent };
    }
    return answer;
  }

  function deliver(url, body, key, label) {
    return body.cosigner_password !== undefined ? postNow(url, body, key) : post(url, body, key, label);
  }

  // --- the checks before the pump (see scan.js) ------------------------------------------

  var PUMP_START = /\/(start|confirm-step)$/;

  function checksShown() {
    var panel = document.getElementById("checks-panel");
    return panel && !panel.hidden;
  }

  // A high-alert drug's pump start carries the second clinician's user name and password.
  function cosigned(url, body) {
    var box = document.getElementById("cosign");
    if (!box || box.hidden || !checksShown() || !PUMP_START.test(url || "")) return body;
    var user = document.getElementById("cosigner-username").value.trim();
    var password = document.getElementById("cosigner-password").value;
    if (user || password) {
      body.cosigner_username = user;
      body.cosigner_password = password;
    }
    return body;
  }

  // A pump start refused while checks are due says why beside the checks, in large type.
  function checksAnswer(url, answer) {
    if (!PUMP_START.test(url || "") || !checksShown() || answer.status === "queued") return;
    var box = document.getElementById("cosign");
    var password = document.getElementById("cosigner-password");
    if (password) password.value = "";
    var out = document.getElementById(box && !box.hidden ? "cosign-result" : "scan-result");
    if (!out) return;
    if (answer.status >= 200 && answer.status < 300) {
      var user = document.getElementById("cosigner-username");
      if (user) user.value = "";
      out.textContent = "";
      out.hidden = true;
      return;
    }
    out.textContent = detailText(answer.data);
    out.className = "scan-refusal scan-result-error";
    out.hidden = false;
    out.scrollIntoView({ block: "nearest" });
  }

  // What scan.js uses of this page's sending.
  window.stepwiseBedside = {
    send: send,
    newKey: newKey,
    detailText: detailText,
    toast: toast,
    showSignedOut: function () {
      showSignedOut();
    },
  };

  // --- an ended sign-in ------------------------------------------------------------------

  var signedOut = false;
  var waiting = []; // {url, body, key, label, resolve}

  function waitForSignIn(url, body, key, label) {
    return new Promise(function (resolve) {
      waiting.push({ url: url, body: body, key: key, label: label, resolve: resolve });
      showPending();
    });
  }

  function showPending() {
    var el = document.getElementById("signed-out-pending");
    if (!el) return;
    el.hidden = waiting.length === 0;
    el.textContent = waiting.length
      ? "Waiting to be sent: " +
        waiting
          .map(function (w) {
            return w.label || "entry";
          })
          .join(", ") +
        "."
      : "";
  }

  function showSignedOut() {
    signedOut = true;
    var overlay = document.getElementById("signed-out");
    if (!overlay) {
      toast("Your sign-in ended: sign in again.", "error");
      return;
    }
    // An open dialog is modal and would keep the overlay from being used; what it held is
    // kept with the waiting request.
    document.querySelectorAll("dialog[open]").forEach(function (dialog) {
      dialog.close();
    });
    overlay.hidden = false;
    document.body.classList.add("is-signed-out");
    showPending();
    var password = overlay.querySelector('input[name="password"]');
    var username = overlay.querySelector('input[name="username"]');
    (username && !username.value ? username : password).focus();
  }

  async function signInInPlace(form) {
    var result = form.querySelector(".form-result");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    result.textContent = "Signing in…";
    var answer;
    try {
      var response = await fetch("/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          username: form.querySelector('input[name="username"]').value,
          password: form.querySelector('input[name="password"]').value,
        }),
      });
      answer = { status: response.status, data: await response.json().catch(function () { return {}; }) };
    } catch (e) {
      answer = { status: 0, data: { detail: "No connection to the server: try again." } };
    }
    button.disabled = false;
    form.querySelector('input[name="password"]').value = "";
    if (answer.status !== 200) {
      result.textContent = detailText(answer.data);
      result.className = "form-result form-result-error";
      return;
    }
    setCsrfToken(answer.data.csrf_token);
    result.textContent = "";
    signedOut = false;
    document.getElementById("signed-out").hidden = true;
    document.body.classList.remove("is-signed-out");
    document.dispatchEvent(new CustomEvent("stepwise:signed-in"));
    var pending = waiting;
    waiting = [];
    showPending();
    for (var i = 0; i < pending.length; i++) {
      var w = pending[i];
      w.resolve(await post(w.url, w.body, w.key, w.label));
    }
    flushOutbox();
  }

  // --- simple buttons ---------------------------------------------------------------------

  async function onPostButton(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    var body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    if (button.hasAttribute("data-versioned")) body.expected_version = currentVersion();
    cosigned(button.dataset.post, body);
    button.disabled = true;
    var answer = await deliver(button.dataset.post, body, newKey(), button.textContent.trim());
    button.disabled = false;
    checksAnswer(button.dataset.post, answer);
    if (answer.status === "queued") {
      toast("No connection: " + button.textContent.trim() + " will be sent when it returns.", "warning");
    } else if (answer.status >= 200 && answer.status < 300) {
      toast("Done.");
      bringNextIntoView();
    } else if (answer.status === 409 && body.expected_version && answer.data.current &&
               answer.data.current.version !== body.expected_version) {
      toast("The session changed meanwhile: " + detailText(answer.data) + " Check the screen and try again.", "error");
    } else {
      toast(detailText(answer.data), "error");
    }
  }

  // --- dialogs ---------------------------------------------------------------------------

  function openDialog(button) {
    var dialog = document.getElementById(button.dataset.open);
    if (!dialog) return;
    var form = dialog.querySelector("form");
    form.dataset.api = button.dataset.action || "";
    form.reset();
    form.querySelectorAll(".form-result").forEach(function (el) {
      el.textContent = "";
    });
    form.querySelectorAll(".confirm-box").forEach(function (el) {
      el.hidden = true;
    });
    form._key = null;
    if (button.dataset.kind) {
      var kind = form.querySelector('input[name="kind"]');
      if (kind) kind.value = button.dataset.kind;
    }
    if (button.dataset.grade) {
      var radio = form.querySelector('input[name="brown_grade"][value="' + button.dataset.grade + '"]');
      if (radio) radio.checked = true;
    }
    if (button.dataset.defaultFrom) {
      var where = form.querySelector('input[name="resume_from"][value="' + button.dataset.defaultFrom + '"]');
      if (where) where.checked = true;
    }
    if (button.dataset.defaultStretch) {
      var stretch = form.querySelector('select[name="stretch"]');
      if (stretch) stretch.value = button.dataset.defaultStretch;
    }
    var advice = form.querySelector("[data-advice]");
    if (advice) {
      advice.textContent = button.dataset.advice || "";
      advice.hidden = !button.dataset.advice;
    }
    if (button.dataset.values) prefillAmend(form, JSON.parse(button.dataset.values));
    dialog.showModal();
    if (form.hasAttribute("data-preview")) preview(form);
  }

  function prefillAmend(form, stored) {
    form._stored = stored;
    Object.keys(stored).forEach(function (name) {
      var input = form.querySelector('input[name="' + name + '"]');
      var entry = stored[name];
      if (input && entry && entry.status === "measured") input.value = entry.value;
    });
  }

  // --- the resume dialog's preview: the steps it would make, before anything is written ---

  var previewTimer = null;
  function preview(form) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async function () {
      var area = form.querySelector("[data-preview-table]");
      if (!area || !form.dataset.api) return;
      var body = Object.assign(jsonBody(form), { dry_run: true });
      var answer = await send(form.dataset.api, body, newKey());
      area.innerHTML = "";
      if (answer.status !== 200) {
        var refusal = document.createElement("p");
        refusal.className = "refusal";
        refusal.textContent = answer.status === 0 ? "No connection: no preview." : detailText(answer.data);
        area.appendChild(refusal);
        return;
      }
      area.appendChild(previewTable(answer.data));
    }, 150);
  }

  function trim(value) {
    if (value === null || value === undefined) return "—";
    var n = Number(value);
    return isNaN(n) ? String(value) : String(Math.round(n * 1000) / 1000);
  }

  function previewTable(view) {
    var wrap = document.createElement("div");
    var table = document.createElement("table");
    table.className = "preview-table";
    var head = document.createElement("tr");
    ["Step", "", "Bag", "Rate", "Minutes", "Dose " + view.unit, "Total " + view.unit].forEach(function (text) {
      var th = document.createElement("th");
      th.textContent = text;
      head.appendChild(th);
    });
    var thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var tbody = document.createElement("tbody");
    var totalMinutes = 0;
    (view.projection || []).forEach(function (p) {
      var tr = document.createElement("tr");
      var words = { repeat: "repeats step ", step_back: "repeats step ", intermediate: "before step ", finish: "finishes step " };
      var origin = p.of_step !== null && words[p.origin] ? words[p.origin] + (p.of_step + 1) : "";
      [
        String(p.number),
        origin,
        p.solution === null ? "—" : String(p.solution),
        p.rate_ml_h === null ? "—" : trim(p.rate_ml_h) + " mL/h",
        trim(p.minutes),
        trim(p.dose),
        trim(p.cumulative),
      ].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      totalMinutes += Number(p.minutes);
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    wrap.appendChild(table);
    var total = document.createElement("p");
    total.className = "muted";
    total.textContent = "About " + Math.round(totalMinutes) + " min to the end of the last step.";
    wrap.appendChild(total);
    return wrap;
  }

  // --- forms -----------------------------------------------------------------------------

  function jsonBody(form) {
    var body = {};
    form.querySelectorAll("input, select, textarea").forEach(function (field) {
      if (!field.name || field.disabled) return;
      if (field.type === "checkbox" && field.hasAttribute("data-list")) {
        body[field.name] = body[field.name] || [];
        if (field.checked) body[field.name].push(field.value);
        return;
      }
      if ((field.type === "radio" || field.type === "checkbox") && !field.checked) return;
      var value = field.value.trim();
      if (value === "") return;
      if (field.hasAttribute("data-time")) value = localTimeToIso(value);
      else if (field.hasAttribute("data-number")) value = Number(value);
      body[field.name] = value;
    });
    return body;
  }

  function premedBody(form) {
    var f = jsonBody(form);
    if (f.none_reason) return { item: "premedications", none_reason: f.none_reason };
    var given = f.given_at || new Date(window.stepwiseServerNow ? window.stepwiseServerNow() : Date.now()).toISOString();
    return {
      item: "premedications",
      premedications: [{ drug: f.drug || "", dose: f.dose || "", route: f.route || "", given_at: given }],
    };
  }

  function vitalsBody(form) {
    var body = { symptoms: [] };
    form.querySelectorAll(".vital-field").forEach(function (wrap) {
      var name = wrap.dataset.field;
      var input = wrap.querySelector('input[name="' + name + '"]');
      var unable = wrap.querySelector('input[name="' + name + '__unable"]');
      var reason = wrap.querySelector('input[name="' + name + '__reason"]');
      if (unable && unable.checked) {
        body[name] = { status: "unable_to_obtain", reason: reason.value.trim() };
      } else if (input.value.trim() !== "") {
        body[name] = input.value.trim();
      }
    });
    form.querySelectorAll('input[name="symptoms"]:checked').forEach(function (box) {
      body.symptoms.push(box.value);
    });
    var level = form.querySelector('input[name="consciousness"]:checked');
    if (level) body.consciousness = level.value;
    var oxygen = form.querySelector('input[name="supplemental_oxygen"]:checked');
    if (oxygen) body.supplemental_oxygen = oxygen.value === "true";
    var note = form.querySelector('input[name="note"]');
    if (note && note.value.trim()) body.note = note.value.trim();
    return body;
  }

  // A correction is a whole set: what was not changed here is sent as it was saved.
  function amendBody(form) {
    var stored = form._stored || {};
    var body = {};
    Object.keys(stored).forEach(function (name) {
      if (name !== "symptoms" && name !== "note" && typeof stored[name] === "object" && stored[name] && stored[name].status !== "measured") {
        body[name] = stored[name];
      }
    });
    form.querySelectorAll(".amend-grid input").forEach(function (input) {
      if (input.value.trim() !== "") body[input.name] = input.value.trim();
    });
    ["symptoms", "note", "consciousness", "supplemental_oxygen"].forEach(function (name) {
      if (stored[name] !== undefined && stored[name] !== "") body[name] = stored[name];
    });
    var reason = form.querySelector('input[name="reason"]');
    body.reason = reason ? reason.value.trim() : "";
    return body;
  }

  function thresholdsBody(form) {
    var overrides = {};
    form.querySelectorAll(".threshold-grid input").forEach(function (input) {
      var value = input.value.trim();
      if (value !== "" && value !== input.dataset.current) overrides[input.name] = value;
    });
    var reason = form.querySelector('input[name="reason"]');
    return { overrides: overrides, reason: reason ? reason.value.trim() : "" };
  }

  function bodyOf(form) {
    var kind = form.dataset.kind;
    var body =
      kind === "vitals" ? vitalsBody(form)
      : kind === "premeds" ? premedBody(form)
      : kind === "amend" ? amendBody(form)
      : kind === "thresholds" ? thresholdsBody(form)
      : jsonBody(form);
    if (form.hasAttribute("data-versioned")) body.expected_version = currentVersion();
    return body;
  }

  function labelOf(form) {
    var title = form.querySelector("h2");
    var kind = form.dataset.kind;
    if (kind === "vitals") return "vitals";
    return title ? title.textContent.trim().toLowerCase() : "entry";
  }

  function showResult(form, text, kind) {
    var out = form.querySelector(".form-result");
    if (out) {
      out.textContent = text;
      out.className = "form-result form-result-" + kind;
    }
  }

  function markFieldErrors(form, data) {
    form.querySelectorAll(".field-error").forEach(function (el) {
      el.textContent = "";
    });
    if (!data || !data.field) return;
    data.field.split(",").forEach(function (name) {
      var el = form.querySelector('[data-error-for="' + name + '"]');
      if (el) el.textContent = detailText(data);
    });
  }

  function clearForm(form) {
    form.reset();
    form._key = null;
    form.querySelectorAll(".unable-reason").forEach(function (r) {
      r.hidden = true;
    });
    form.querySelectorAll("input[inputmode]").forEach(function (i) {
      i.disabled = false;
    });
    markFieldErrors(form, null);
    var confirmBox = form.querySelector(".confirm-box");
    if (confirmBox) confirmBox.hidden = true;
    var dialog = form.closest("dialog");
    if (dialog) dialog.close();
  }

  async function submit(form, confirmed) {
    if (form.dataset.confirm && !confirmed && !window.confirm(form.dataset.confirm)) return;
    var body = bodyOf(form);
    if (confirmed) body.confirm = true;
    // One key per distinct request: a resend of the same values replays the first answer;
    // changed values (or the confirmation) are a new request.
    var fingerprint = JSON.stringify(body);
    if (!form._key || form._fingerprint !== fingerprint) {
      form._key = newKey();
      form._fingerprint = fingerprint;
    }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) {
      b.disabled = true;
    });
    showResult(form, "Saving…", "pending");
    var answer = await deliver(form.dataset.api, cosigned(form.dataset.api, body), form._key, labelOf(form));
    buttons.forEach(function (b) {
      b.disabled = false;
    });
    checksAnswer(form.dataset.api, answer);
    var confirmBox = form.querySelector(".confirm-box");
    if (answer.status === "queued") {
      clearForm(form);
      showResult(form, "No connection: kept on this tablet; it is sent as soon as the connection returns.", "warning");
      toast("No connection: kept on this tablet, sent when the connection returns.", "warning");
      return;
    }
    if (answer.status >= 200 && answer.status < 300) {
      clearForm(form);
      showResult(form, "Saved.", "ok");
      toast("Saved.");
      bringNextIntoView();
      return;
    }
    if (answer.status === 422 && answer.data.needs_confirmation && confirmBox) {
      var list = confirmBox.querySelector(".confirm-list");
      list.innerHTML = "";
      answer.data.needs_confirmation.forEach(function (finding) {
        var item = document.createElement("li");
        item.className = "finding finding-" + String(finding.priority || "").toLowerCase();
        item.textContent = (finding.priority ? finding.priority + ": " : "") + finding.message;
        list.appendChild(item);
      });
      // A value far from the baseline may be a typing error: "is 214 right?"
      (answer.data.far_from_baseline || []).forEach(function (doubt) {
        var item = document.createElement("li");
        item.className = "finding finding-doubt";
        item.textContent = doubt.message;
        list.appendChild(item);
      });
      confirmBox.hidden = false;
      showResult(form, "Not saved yet: confirm the values.", "warning");
      var save = confirmBox.querySelector("[data-confirm-save]");
      if (save) {
        save.scrollIntoView({ block: "center" });
        save.focus();
      }
      return;
    }
    markFieldErrors(form, answer.data);
    showResult(form, detailText(answer.data), "error");
  }

  // After a save, show what comes next: the pump prompt, or an alarm (pinned already).
  function bringNextIntoView() {
    setTimeout(function () {
      var next = document.getElementById("pump-prompt") || document.querySelector("#actions .button-primary");
      if (next && !document.querySelector("dialog[open]")) next.scrollIntoView({ block: "center" });
    }, 300);
  }

  // --- the vitals keypad -----------------------------------------------------------------

  function stepField(button) {
    var input = button.closest(".stepper").querySelector("input");
    if (input.disabled) return;
    var step = parseFloat(button.dataset.step);
    var places = (String(Math.abs(step)).split(".")[1] || "").length;
    var current = parseFloat(input.value);
    if (isNaN(current)) current = parseFloat(input.dataset.baseline || input.dataset.start);
    else current += step;
    input.value = current.toFixed(places);
  }

  function showBaselines() {
    document.querySelectorAll("#baseline-values li").forEach(function (li) {
      var hint = document.querySelector('[data-baseline-for="' + li.dataset.field + '"]');
      if (hint) hint.textContent = "baseline " + li.dataset.value;
      var input = document.querySelector('#vitals-form input[name="' + li.dataset.field + '"]');
      if (input) input.dataset.baseline = li.dataset.value;
    });
  }

  // A pump change that has just come due is brought into view, unless the nurse is typing.
  var lastStatus = null;
  function onUpdated() {
    showBaselines();
    var panel = document.getElementById("status-panel");
    var status = panel ? panel.className.replace(/.*status-(\w+).*/, "$1") : null;
    if (status === "step_due" && lastStatus && lastStatus !== "step_due") {
      var active = document.activeElement;
      if (!active || active === document.body || active.tagName === "BUTTON") bringNextIntoView();
    }
    lastStatus = status;
  }

  // --- alarm sound (Web Audio) ----------------------------------------------------------

  var audio = null;
  var lastPlayed = { HIGH: 0, MEDIUM: 0, LOW: 0 };
  var REPEAT_MS = { HIGH: 6000, MEDIUM: 12000, LOW: 30000 };
  // IEC 60601-1-8 burst shapes: HIGH 10 pulses (3+2, twice), MEDIUM 3, LOW 1.
  var PATTERNS = {
    HIGH: { hz: 880, pulse: 0.15, at: [0, 0.25, 0.5, 1.0, 1.25, 2.0, 2.25, 2.5, 3.0, 3.25] },
    MEDIUM: { hz: 660, pulse: 0.2, at: [0, 0.35, 0.7] },
    LOW: { hz: 520, pulse: 0.25, at: [0] },
  };

  function unlockAudio() {
    if (audio) return audio;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    audio = new Context();
    if (audio.state === "suspended") audio.resume();
    document.body.classList.add("audio-on");
    return audio;
  }

  function play(priority) {
    var pattern = PATTERNS[priority];
    if (!pattern) return;
    document.body.dataset.lastSound = priority;
    if (!audio) return; // not unlocked by a tap yet: the sound state says so
    var start = audio.currentTime + 0.05;
    pattern.at.forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = pattern.hz;
      var t = start + offset;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.setValueAtTime(0.25, t + pattern.pulse - 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + pattern.pulse);
      osc.connect(gain).connect(audio.destination);
      osc.start(t);
      osc.stop(t + pattern.pulse + 0.02);
    });
  }

  var RANK = { LOW: 1, MEDIUM: 2, HIGH: 3 };

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // What the speaker should play now: the regions the server renders say what sounds and
  // until when an audio pause runs (only those regions: the page's own state is not read back,
  // so nothing can latch here). Acknowledged alarms are silent in what the server sends.
  function soundingNow(serverNow) {
    var top = null;
    var pausedFor = 0;
    document.querySelectorAll("#alarm-banner[data-sounding], #escalations[data-sounding]").forEach(function (el) {
      var priority = el.dataset.sounding;
      var paused = Date.parse(el.dataset.audioPausedUntil || "");
      if (!isNaN(paused)) {
        if (serverNow >= paused) priority = el.dataset.resumeSounding || priority;
        else if (el.dataset.resumeSounding) pausedFor = Math.max(pausedFor, paused - serverNow);
      }
      if (priority && (!top || RANK[priority] > RANK[top])) top = priority;
    });
    return { priority: top, pausedFor: pausedFor };
  }

  function showSoundState(now) {
    var el = document.getElementById("sound-state");
    if (!el) return;
    var text, state;
    if (!audio) {
      text = "Sound off — tap to enable";
      state = "off";
    } else if (now.pausedFor > 0) {
      var speed = window.stepwiseClockSpeed ? window.stepwiseClockSpeed() : 1;
      var seconds = Math.ceil(now.pausedFor / speed / 1000);
      text = "Sound paused " + Math.floor(seconds / 60) + ":" + two(seconds % 60);
      state = "paused";
    } else {
      text = now.priority ? "Sound on — " + now.priority + " alarm" : "Sound on";
      state = "on";
    }
    if (el.textContent !== text) el.textContent = text;
    el.className = "sound-state sound-" + state;
    document.body.dataset.sound = state;
  }

  window.stepwiseAlarmSound = {
    update: function (serverNow) {
      var now = soundingNow(serverNow);
      showSoundState(now);
      document.body.dataset.alarmSounding = now.priority || "";
      if (!now.priority) return;
      var wall = Date.now();
      if (wall - lastPlayed[now.priority] >= REPEAT_MS[now.priority]) {
        lastPlayed[now.priority] = wall;
        play(now.priority);
      }
    },
  };

  // --- wiring ----------------------------------------------------------------------------

  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("button, [data-open]");
    if (!target) return;
    if (target.id === "sound-state") {
      unlockAudio();
      play("LOW");
    } else if (target.dataset.post) {
      onPostButton(target);
    } else if (target.dataset.open) {
      openDialog(target);
    } else if (target.hasAttribute("data-close")) {
      target.closest("dialog").close();
    } else if (target.dataset.step) {
      stepField(target);
    } else if (target.id === "full-screen") {
      // A wall screen: the board without the browser's bars (press Esc to leave).
      if (document.fullscreenElement) document.exitFullscreen();
      else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen();
    } else if (target.hasAttribute("data-confirm-save")) {
      submit(target.closest("form"), true);
    } else if (target.hasAttribute("data-confirm-cancel")) {
      var form = target.closest("form");
      form.querySelector(".confirm-box").hidden = true;
      showResult(form, "Correct the values, then save again.", "warning");
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "signed-out-form") {
      event.preventDefault();
      signInInPlace(form);
      return;
    }
    if (!form.dataset || form.dataset.api === undefined) return;
    event.preventDefault();
    submit(form, false);
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.name && box.name.slice(-8) === "__unable") {
      var wrap = box.closest(".vital-field");
      wrap.querySelector(".unable-reason").hidden = !box.checked;
      wrap.querySelector("input[inputmode]").disabled = box.checked;
    }
    var form = box.closest && box.closest("form[data-preview]");
    if (form) preview(form);
  });

  document.addEventListener("stepwise:updated", onUpdated);
  document.addEventListener("stepwise:signed-out", showSignedOut);
  document.addEventListener("stepwise:connected", flushOutbox);
  window.addEventListener("online", flushOutbox);
  window.addEventListener("storage", showOutbox); // another tab of this tablet sent or queued
  setInterval(flushOutbox, FLUSH_EVERY_MS);
  showBaselines();
  showOutbox();
  flushOutbox();
})();
