// Live updates for the LunaSentri dashboard: a progressive enhancement.
// The server sends "change" on /ui/live when anything a page shows may have
// changed; this script then fetches the same page again and swaps each
// [data-live] region for the new one. The HTML comes from the same escaped
// server templates: nothing here builds markup from data.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  if (!regions.length || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var state = document.getElementById("live-state");
  var busy = false, again = false, lost = false;

  function show(on, text) {
    if (!state) return;
    state.hidden = false;
    state.className = "live-state " + (on ? "on" : "off");
    state.textContent = text;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelectorAll("[data-live]");
        if (fresh.length !== regions.length) return;
        // Do not yank a form control out from under someone using it.
        var active = document.activeElement;
        for (var i = 0; i < regions.length; i++) {
          if (active && regions[i].contains(active) && active.tagName !== "A" && active !== document.body) continue;
          regions[i].replaceWith(fresh[i]);
        }
        regions = document.querySelectorAll("[data-live]");
      })
      .catch(function () { show(false, "update failed, retrying"); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var es = new EventSource("/ui/live");
  es.addEventListener("hello", function () {
    show(true, "live");
    // After a reconnect (a node restarted, the stream aged out) anything may
    // have changed while we were away.
    if (lost) { lost = false; refresh(); }
  });
  es.addEventListener("change", refresh);
  // Heartbeats do not count as changes (they would refresh every page four
  // times a second), so "last seen 5s ago" is brought up to date every 15 s.
  setInterval(function () {
    if (document.visibilityState === "visible" && !lost) refresh();
  }, 15000);
  es.onerror = function () { lost = true; show(false, "reconnecting…"); };
})();
