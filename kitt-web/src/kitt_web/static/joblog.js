// A job's live log: an event stream from the start, resumed by the browser with
// Last-Event-ID after any drop (the server replays from that byte), closed at `end`.
"use strict";
(function () {
  const log = document.getElementById("job-log");
  if (!log || !window.EventSource) return;
  const state = document.getElementById("job-state");
  const stream = new EventSource(log.dataset.stream);
  stream.addEventListener("log", (event) => {
    log.append(document.createTextNode(event.data));
    log.scrollTop = log.scrollHeight;
  });
  stream.addEventListener("end", (event) => {
    stream.close();
    if (state && state.textContent !== event.data) {
      state.textContent = event.data;
      state.className = "status " + event.data;
      window.location.reload(); // the run link and reason
    }
    log.dataset.ended = "true";
  });
})();
