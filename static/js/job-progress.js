// Live progress of generation jobs and background operations: polls each unfinished one's
// progress URL; a job links the cases it has made as they come; an operation's page reloads
// once it finishes, to show what it made.
(function () {
  "use strict";
  const FINISHED = new Set(["succeeded", "failed"]);
  const POLL_MS = 1500;

  function render(row, job) {
    row.dataset.status = job.status;
    const bar = row.querySelector("progress");
    bar.max = job.total;
    bar.value = job.done;
    row.querySelector(".count").textContent = job.done + "/" + job.total;
    const status = row.querySelector(".status");
    status.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1);
    status.className = "status status-" + job.status;
    row.querySelector(".error").textContent = job.error;
    const cases = row.querySelector(".job-cases");
    if (cases && job.cases_url) {
      cases.href = job.cases_url;
      cases.textContent = job.done + (job.done === 1 ? " case" : " cases");
      cases.hidden = job.done === 0;
    }
  }

  function watch(row) {
    const tick = function () {
      fetch(row.dataset.progressUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) {
          render(row, job);
          if (!FINISHED.has(job.status)) setTimeout(tick, POLL_MS);
          else if ("reloadWhenFinished" in row.dataset) window.location.reload();
        })
        .catch(function () { setTimeout(tick, POLL_MS * 4); });
    };
    tick();
  }

  document.querySelectorAll(".job[data-progress-url]").forEach(function (row) {
    if (!FINISHED.has(row.dataset.status)) watch(row);
  });
})();
