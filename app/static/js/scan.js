// Checks before the pump (the bedside's #checks-panel): the field a keyboard-wedge scanner
// types into (it ends each code with Enter), the tablet's camera, and a code typed by hand
// (flagged in the record). The field takes the wristband first, then the label of the bag
// due, as #checks-due (a live region) says after every update.
//
// A scan is sent at once and never kept in the outbox for later: it checks the bag in hand
// now. A refusal (a wrong bag or patient, a voided or unreadable label) is shown beside the
// field; the HIGH alarm it raises reaches every screen through the alarm banner.
(function () {
  "use strict";

  var FRAME_MS = 120; // how often the camera's picture is searched for a QR code
  var MAX_SIDE = 800; // pixels: frames are scaled down to this before jsQR reads them

  var api = window.stepwiseBedside;
  var panel = document.getElementById("checks-panel");
  if (!panel || !api) return;
  var form = document.getElementById("scan-form");
  var field = document.getElementById("scan-code");
  var label = document.getElementById("scan-label");
  var result = document.getElementById("scan-result");
  var submitButton = document.getElementById("scan-submit");
  var manualButton = document.getElementById("scan-manual");
  var manualNote = document.getElementById("scan-manual-note");
  var cameraButton = document.getElementById("scan-camera");
  var cameraView = document.getElementById("scan-camera-view");
  var cameraState = document.getElementById("scan-camera-state");
  var video = document.getElementById("scan-video");
  var cosign = document.getElementById("cosign");
  var busy = false;

  // --- what is due -------------------------------------------------------------------------

  function dueOnPage() {
    var el = document.getElementById("checks-due");
    if (!el) return null;
    return {
      shown: el.dataset.shown === "yes",
      kind: el.dataset.scanKind || "",
      prompt: el.dataset.prompt || "",
      double: el.dataset.doubleCheck === "yes",
    };
  }

  // The same, from a session as the API answers it (a scan's answer arrives before the live
  // update: the next scan must already go to the next kind).
  function dueOfView(view) {
    var c = view.checks || {};
    var coming = view.status === "ready" || view.status === "step_due";
    var bagPending = coming && c.bag_due !== null && c.bag_due !== undefined && c.bag_checked !== c.bag_due;
    var kind = coming && c.wristband_due ? "wristband" : bagPending ? "bag" : "";
    var double = coming && !!c.double_check_due;
    return {
      shown: !!kind || double,
      kind: kind,
      prompt: kind === "wristband" ? "Scan the patient's wristband" : kind === "bag" ? "Scan the label of bag " + c.bag_due : "",
      double: double,
    };
  }

  function somewhereElse() {
    var active = document.activeElement;
    if (document.querySelector("dialog[open]")) return true;
    if (!active || active === field) return false;
    return /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  function show(due) {
    if (!due) return;
    var appeared = panel.hidden && due.shown;
    var kindChanged = form.dataset.scanKind !== due.kind;
    panel.hidden = !due.shown;
    form.hidden = !due.kind;
    cosign.hidden = !due.double;
    if (!due.double) clearCosign();
    label.textContent = due.prompt;
    form.dataset.scanKind = due.kind;
    if (kindChanged) {
      field.value = "";
      if (!result.classList.contains("scan-result-ok")) say("", "");
    }
    if (!due.kind) stopCamera();
    if (due.kind && (appeared || kindChanged) && !stream && !somewhereElse()) field.focus();
  }

  function clearCosign() {
    cosign.querySelectorAll("input").forEach(function (input) {
      input.value = "";
    });
    var out = document.getElementById("cosign-result");
    if (out) {
      out.textContent = "";
      out.hidden = true;
    }
  }

  function say(text, kind) {
    result.textContent = text;
    result.hidden = !text;
    result.className = "scan-refusal" + (kind ? " scan-result-" + kind : "");
    if (kind === "error") result.scrollIntoView({ block: "nearest" });
  }

  // --- sending a scan ----------------------------------------------------------------------

  function method() {
    return manualButton.getAttribute("aria-pressed") === "true" ? "manual" : "scanner";
  }

  async function submitScan(code, how) {
    code = (code || "").trim();
    var kind = form.dataset.scanKind;
    if (!code || !kind || busy) return;
    busy = true;
    submitButton.disabled = true;
    say("Checking…", "pending");
    var answer = await api.send(form.dataset.scanApi, { kind: kind, code: code, method: how }, api.newKey());
    busy = false;
    submitButton.disabled = false;
    if (answer.status >= 200 && answer.status < 300) {
      var checks = answer.data.checks || {};
      var done = kind === "wristband" ? "Wristband checked: the right patient." : "Label of bag " + checks.bag_checked + " checked: the right bag.";
      field.value = "";
      say(done, "ok");
      api.toast(done);
      show(dueOfView(answer.data));
      return;
    }
    if (answer.status === 401) {
      say("Your sign-in ended: sign in again, then scan again.", "error");
      api.showSignedOut();
      return;
    }
    if (answer.status === 0 || answer.status === 503) {
      say("No connection to the server: the scan was not checked. Scan again when the connection returns.", "error");
    } else {
      say(api.detailText(answer.data), "error");
    }
    if (!stream) {
      field.focus();
      field.select(); // the next scan replaces what was read
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitScan(field.value, method());
  });

  manualButton.addEventListener("click", function () {
    var on = method() !== "manual";
    manualButton.setAttribute("aria-pressed", on ? "true" : "false");
    manualButton.textContent = on ? "Back to the scanner" : "Type the code by hand";
    manualNote.hidden = !on;
    field.classList.toggle("scan-code-manual", on);
    field.value = "";
    field.focus();
  });

  // --- the camera ----------------------------------------------------------------------------

  var stream = null;
  var timer = null;
  var detector = null;
  var canvas = null;
  var jsQRLoading = null;

  async function barcodeDetector() {
    if (!("BarcodeDetector" in window)) return null;
    try {
      var formats = await window.BarcodeDetector.getSupportedFormats();
      return formats.indexOf("qr_code") >= 0 ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    } catch (e) {
      return null;
    }
  }

  function loadJsQR() {
    if (window.jsQR) return Promise.resolve();
    if (!jsQRLoading) {
      jsQRLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = form.dataset.jsqr;
        script.onload = resolve;
        script.onerror = function () {
          jsQRLoading = null;
          reject(new Error("the QR reader did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return jsQRLoading;
  }

  async function readFrame() {
    if (video.readyState < 2 || !video.videoWidth) return null;
    if (detector) {
      var codes = await detector.detect(video);
      return codes.length ? codes[0].rawValue : null;
    }
    var scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    var width = Math.round(video.videoWidth * scale);
    var height = Math.round(video.videoHeight * scale);
    canvas = canvas || document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    var context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0, width, height);
    var found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height, {
      inversionAttempts: "dontInvert",
    });
    return found && found.data ? found.data : null;
  }

  function look() {
    timer = setTimeout(async function () {
      if (!stream) return;
      var text = null;
      try {
        text = await readFrame();
      } catch (e) {
        text = null;
      }
      if (!stream) return;
      if (!text) {
        look();
        return;
      }
      stopCamera();
      field.value = text;
      submitScan(text, "camera");
    }, FRAME_MS);
  }

  async function startCamera() {
    if (stream) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser gives no camera to this page (it needs https). Use the scanner, or type the code by hand.", "error");
      return;
    }
    cameraView.hidden = false;
    cameraButton.disabled = true;
    cameraState.textContent = "Starting the camera…";
    var started;
    try {
      started = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      detector = await barcodeDetector();
      if (!detector) await loadJsQR();
    } catch (error) {
      if (started) started.getTracks().forEach(function (track) { track.stop(); });
      cameraView.hidden = true;
      cameraButton.disabled = false;
      say("The camera could not start (" + (error.message || error.name) + "). Use the scanner, or type the code by hand.", "error");
      return;
    }
    stream = started;
    video.srcObject = stream;
    try {
      await video.play();
    } catch (e) {
      /* muted video plays without a gesture; a refusal shows as no frames */
    }
    cameraState.textContent = "Hold the label's QR code in front of the camera.";
    look();
  }

  function stopCamera() {
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.srcObject = null;
    cameraView.hidden = true;
    cameraButton.disabled = false;
  }

  cameraButton.addEventListener("click", startCamera);
  document.getElementById("scan-camera-stop").addEventListener("click", function () {
    stopCamera();
    field.focus();
  });
  window.addEventListener("pagehide", stopCamera);

  // --- the co-signer -------------------------------------------------------------------------

  // Enter in the co-signer's password presses the start (or the pump confirmation) in view.
  document.getElementById("cosigner-password").addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    event.preventDefault();
    var go = document.getElementById("confirm-step") || document.querySelector('#actions [data-post$="/start"]');
    if (go && !go.disabled) go.click();
  });

  document.addEventListener("stepwise:updated", function () {
    show(dueOnPage());
  });
  show(dueOnPage());
})();
