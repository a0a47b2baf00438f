// The template page's generate button says how many cases it will make: "Generate 3 cases".
(function () {
  "use strict";
  const form = document.getElementById("generate-form");
  if (!form) return;
  const count = form.querySelector("input[name=n_cases]");
  const button = document.getElementById("generate-button");
  const update = function () {
    const n = parseInt(count.value, 10);
    button.textContent = n > 0 ? "Generate " + n + (n === 1 ? " case" : " cases") : "Generate cases";
  };
  count.addEventListener("input", update);
  update();
})();
