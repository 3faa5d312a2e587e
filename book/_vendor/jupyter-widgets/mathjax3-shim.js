// a2dkit book: ipywidgets' html-manager typesets widget labels with the MathJax 2 API
// (MathJax.Hub.Queue), but Sphinx loads MathJax 3, which has no Hub: without this bridge every
// page with a widget throws "Cannot read properties of undefined (reading 'Queue')".
document.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;  // MathJax 3 (deferred) has replaced its config object by now
  if (mathjax === undefined || mathjax.Hub !== undefined) return;
  mathjax.Hub = {
    Queue: (job) => {
      const element = Array.isArray(job) ? job[2] : undefined;
      if (element && typeof mathjax.typesetPromise === "function") {
        mathjax.typesetPromise([element]).catch((err) => console.warn("MathJax:", err));
      }
    },
  };
});
