/*
 * Exam countdown (templates/edu/attempt_item.html): #countdown carries the seconds left when
 * the page was made (data-seconds-left, from the server's clock, so a wrong clock in the
 * browser does not matter). It ticks down each second; at zero the submit button is
 * disabled and the page reloads, and the server, which enforces the deadline itself, shows
 * the attempt finished.
 */
(function () {
  'use strict';

  const node = document.getElementById('countdown');
  if (!node) {
    return;
  }
  const clock = node.querySelector('[data-countdown="clock"]');
  const endsAt = performance.now() + Number(node.dataset.secondsLeft) * 1000;
  let timer = null;

  function format(total) {
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = String(total % 60).padStart(2, '0');
    return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
  }

  function tick() {
    const left = Math.max(0, Math.ceil((endsAt - performance.now()) / 1000));
    clock.textContent = format(left);
    node.dataset.left = String(left);
    if (left > 0) {
      return;
    }
    clearInterval(timer);
    const submit = document.getElementById('submit-answers');
    if (submit) {
      submit.disabled = true;
    }
    window.setTimeout(() => window.location.reload(), 1000);
  }

  tick();
  timer = setInterval(tick, 1000);
})();
