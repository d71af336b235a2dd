// Bedside and board actions. Writes go over HTTP to the JSON API (never over the websocket),
// each with a client-made Idempotency-Key that is kept for resends: a save repeated after a
// dropped connection is answered with the first answer and never saved twice. What the write
// changed arrives on every screen through the websocket.
(function () {
  "use strict";

  var RESEND_ATTEMPTS = 4;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
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

  // POST JSON; on a network failure resend with the same key (the server replays).
  async function post(url, body, key) {
    var lastError = null;
    for (var attempt = 0; attempt < RESEND_ATTEMPTS; attempt++) {
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
        lastError = error;
        await sleep(500 * Math.pow(2, attempt));
      }
    }
    return { status: 0, data: { detail: "No connection to the server: nothing was saved. (" + lastError + ")" } };
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
    el._timer = setTimeout(function () {
      el.hidden = true;
    }, kind === "error" ? 12000 : 4000);
  }

  function currentVersion() {
    var panel = document.getElementById("status-panel");
    return panel ? parseInt(panel.dataset.version, 10) : null;
  }

  function localTimeToIso(value) {
    if (!value) return null;
    var date = new Date(value); // datetime-local: the tablet's own time zone
    return isNaN(date.getTime()) ? null : date.toISOString();
  }

  // --- simple buttons ---------------------------------------------------------------------

  async function onPostButton(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    var body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    if (button.hasAttribute("data-versioned")) body.expected_version = currentVersion();
    button.disabled = true;
    var answer = await post(button.dataset.post, body, newKey());
    button.disabled = false;
    if (answer.status >= 200 && answer.status < 300) {
      toast("Done.");
    } else if (answer.status === 409 && body.expected_version) {
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
    form._key = null;
    if (button.dataset.grade) {
      var radio = form.querySelector('input[name="brown_grade"][value="' + button.dataset.grade + '"]');
      if (radio) radio.checked = true;
    }
    dialog.showModal();
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

  function bodyOf(form) {
    var kind = form.dataset.kind;
    var body = kind === "vitals" ? vitalsBody(form) : kind === "premeds" ? premedBody(form) : jsonBody(form);
    if (form.hasAttribute("data-versioned")) body.expected_version = currentVersion();
    return body;
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
    var answer = await post(form.dataset.api, body, form._key);
    buttons.forEach(function (b) {
      b.disabled = false;
    });
    var confirmBox = form.querySelector(".confirm-box");
    if (answer.status >= 200 && answer.status < 300) {
      showResult(form, "Saved.", "ok");
      form.reset();
      form._key = null;
      form.querySelectorAll(".unable-reason").forEach(function (r) {
        r.hidden = true;
      });
      form.querySelectorAll("input[inputmode]").forEach(function (i) {
        i.disabled = false;
      });
      markFieldErrors(form, null);
      if (confirmBox) confirmBox.hidden = true;
      var dialog = form.closest("dialog");
      if (dialog) dialog.close();
      toast("Saved.");
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
      confirmBox.querySelector("[data-confirm-save]").focus();
      return;
    }
    markFieldErrors(form, answer.data);
    showResult(form, detailText(answer.data), "error");
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
    if (!audio) return; // not unlocked by a tap yet: the screen shows it
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

  window.stepwiseAlarmSound = {
    update: function (serverNow) {
      var top = null;
      document.querySelectorAll("[data-sounding]").forEach(function (el) {
        var priority = el.dataset.sounding;
        var paused = Date.parse(el.dataset.audioPausedUntil || "");
        if (!isNaN(paused) && serverNow >= paused) priority = el.dataset.resumeSounding || priority;
        if (priority && (!top || RANK[priority] > RANK[top])) top = priority;
      });
      document.body.dataset.sounding = top || "";
      if (!top) return;
      var now = Date.now();
      if (now - lastPlayed[top] >= REPEAT_MS[top]) {
        lastPlayed[top] = now;
        play(top);
      }
    },
  };

  // --- wiring ----------------------------------------------------------------------------

  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("button, [data-open]");
    if (!target) return;
    if (target.id === "test-sound") {
      unlockAudio();
      play("HIGH");
      target.textContent = "Sound on — test again";
    } else if (target.dataset.post) {
      onPostButton(target);
    } else if (target.dataset.open) {
      openDialog(target);
    } else if (target.hasAttribute("data-close")) {
      target.closest("dialog").close();
    } else if (target.dataset.step) {
      stepField(target);
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
  });

  document.addEventListener("stepwise:updated", showBaselines);
  showBaselines();
})();
