/*
 * Quiz item page (templates/edu/attempt_item.html): answers survive a lost connection.
 *
 * Submitting the item keeps its answers in localStorage under
 * "gantry:answers:<attempt id>:<item id>" and posts them with fetch. They leave the store
 * only once the server has answered: saved (the page reloads with the feedback) or refused
 * (400: the reason is shown, with how many of them were saved). Offline, or when the post fails, they stay, and are sent again
 * when the browser is back online or the page is loaded again. The server keeps one answer
 * per question, so answers sent twice never count twice. Without localStorage the browser
 * posts the form itself, as it does without JavaScript.
 */
(function () {
  'use strict';

  const form = document.getElementById('item-form');
  const status = document.getElementById('offline-status');
  if (!form || !form.dataset.attempt || !status || !window.fetch) {
    return;
  }
  const key = `gantry:answers:${form.dataset.attempt}:${form.dataset.item}`;
  const KEPT = 'your answers are kept in this browser and will be sent when the connection returns.';
  let sending = false;

  function store() {
    try {
      return window.localStorage;
    } catch (error) {
      return null; // storage disabled
    }
  }

  function load() {
    try {
      return JSON.parse(store().getItem(key));
    } catch (error) {
      return null;
    }
  }

  function show(text, isError) {
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle('error', Boolean(isError));
  }

  function fieldsOf() {
    return Array.from(new FormData(form)).filter(([name]) => name !== 'csrfmiddlewaretoken');
  }

  /** Put kept answers back into the inputs (after a reload, before they are sent). */
  function restore(fields) {
    for (const [name, value] of fields) {
      for (const input of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
        if (input.type === 'radio' || input.type === 'checkbox') {
          input.checked = input.value === value;
        } else {
          input.value = value;
        }
      }
    }
  }

  async function send() {
    const kept = load();
    if (!kept || sending) {
      return;
    }
    if (navigator.onLine === false) {
      show(`You are offline: ${KEPT}`);
      return;
    }
    sending = true;
    const body = new URLSearchParams(kept.fields);
    body.append('csrfmiddlewaretoken', form.querySelector('[name=csrfmiddlewaretoken]').value);
    let response;
    try {
      response = await fetch(form.action, {method: 'POST', body, credentials: 'same-origin'});
    } catch (error) {
      show(`The connection was lost: ${KEPT}`);
      return;
    } finally {
      sending = false;
    }
    if (response.ok) {
      store().removeItem(key);
      window.location.replace(response.url);
    } else if (response.status === 400) {
      store().removeItem(key);
      const page = new DOMParser().parseFromString(await response.text(), 'text/html');
      const reason = page.getElementById('answer-error');
      const saved = page.getElementById('answers-saved');
      show(`${saved ? `${saved.textContent} ` : ''}Not accepted: ` +
        `${reason ? reason.textContent : 'HTTP 400'}`, true);
    } else {
      show(`The server did not save your answers (HTTP ${response.status}); ${KEPT}`, true);
    }
  }

  form.addEventListener('submit', (event) => {
    if (!store()) {
      return;
    }
    event.preventDefault();
    store().setItem(key, JSON.stringify({fields: fieldsOf(), keptAt: new Date().toISOString()}));
    send();
  });
  window.addEventListener('online', send);
  window.addEventListener('offline', () => show(`You are offline: ${KEPT}`));

  const kept = store() && load();
  if (kept) {
    if (document.getElementById('submit-answers')) {
      restore(kept.fields);
    }
    send();
  }
})();
