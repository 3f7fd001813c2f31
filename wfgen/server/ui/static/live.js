// wfgen serve dashboard: a page of something running (<main data-live>)
// fetches itself every 2 s and swaps in the new <main>, so the window keeps
// its scroll position (a console scrolled to its end stays at the end).
// Without JavaScript the page has a <noscript> meta refresh instead.
(function () {
  "use strict";
  var PERIOD = 2000;
  function atEnd(el) { return el.scrollTop + el.clientHeight >= el.scrollHeight - 4; }
  function tick() {
    var main = document.querySelector("main[data-live]");
    if (!main) { return; }
    fetch(location.href, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main");
        if (!fresh) { return; }
        var keep = {};
        main.querySelectorAll("pre[id], .source").forEach(function (el) {
          keep[el.id || "source"] = {top: el.scrollTop, end: atEnd(el)};
        });
        main.replaceWith(fresh);
        document.title = doc.title;
        fresh.querySelectorAll("pre[id], .source").forEach(function (el) {
          var was = keep[el.id || "source"];
          if (was) { el.scrollTop = was.end ? el.scrollHeight : was.top; }
        });
        if (fresh.hasAttribute("data-live")) { setTimeout(tick, PERIOD); }
      })
      .catch(function () { setTimeout(tick, PERIOD * 3); });
  }
  setTimeout(tick, PERIOD);
})();
