/* flowgraph workbench: the alert page's forward-flow graph (cytoscape.js, vendored).
   Accounts sit left to right by when the money first reached them; the time slider
   replays the transfers; click an account to open it; wheel / drag to zoom and pan. */
(function () {
  "use strict";
  var holder = document.getElementById("graph");
  var source = document.getElementById("graph-data");
  if (!holder || !source || typeof cytoscape !== "function") { return; }
  var data = JSON.parse(source.textContent);
  var cy = cytoscape({
    container: holder,
    elements: { nodes: data.nodes, edges: data.edges },
    layout: { name: "preset", fit: true, padding: 40 },
    minZoom: 0.05,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
          "background-color": "#78909c", "label": "data(label)", "font-size": 11, "color": "#1d2430",
          "text-valign": "top", "text-margin-y": -4, "text-wrap": "wrap", "text-halign": "center", "width": 18, "height": 18,
          "border-width": 1, "border-color": "#455a64" } },
      { selector: "node.borrower", style: { "background-color": "#f9a825" } },
      { selector: "node.prohibited", style: { "background-color": "#8e24aa", "shape": "diamond" } },
      { selector: "node.origin", style: { "background-color": "#1f5fbf", "width": 24, "height": 24 } },
      { selector: "node.origin.borrower", style: { "border-width": 3, "border-color": "#f9a825" } },
      { selector: "edge", style: {
          "width": 1.5, "line-color": "#90a4ae", "target-arrow-color": "#90a4ae",
          "target-arrow-shape": "triangle", "curve-style": "bezier", "label": "data(label)",
          "font-size": 9, "color": "#6b7585", "text-rotation": "autorotate", "text-background-color": "#fbfcfe",
          "text-background-opacity": 0.8 } },
      { selector: "edge.flow_back", style: { "line-color": "#e57373", "target-arrow-color": "#e57373", "width": 2.5 } },
      { selector: "edge.return", style: { "line-color": "#c62828", "target-arrow-color": "#c62828", "width": 3.5 } },
      { selector: "edge.prohibited", style: { "line-style": "dashed" } },
      { selector: ".hidden-by-time", style: { "display": "none" } },
      { selector: ":selected", style: { "overlay-opacity": 0.15 } }
    ]
  });
  cy.on("tap", "node", function (evt) {
    var href = evt.target.data("href");
    if (href) { window.location.href = href; }
  });
  cy.on("mouseover", "edge", function (evt) {
    var e = evt.target;
    holder.title = e.data("tx_id") + " · " + e.data("when") + " · " + e.data("amount") + (e.data("hop") ? " · hop " + e.data("hop") : "");
  });
  var slider = document.getElementById("time-slider");
  var label = document.getElementById("time-label");
  function showUntil(t) {
    cy.batch(function () {
      cy.edges().forEach(function (e) { e.toggleClass("hidden-by-time", e.data("ts") > t); });
      cy.nodes().forEach(function (n) { n.toggleClass("hidden-by-time", n.data("arrive") > t); });
    });
    if (label) { label.textContent = new Date(t).toISOString().replace(".000Z", "Z"); }
  }
  if (slider) {
    slider.addEventListener("input", function () { showUntil(Number(slider.value)); });
    showUntil(Number(slider.value));
  }
  var fit = document.getElementById("fit");
  if (fit) { fit.addEventListener("click", function () { cy.fit(undefined, 40); }); }
  window.flowgraphGraph = cy;  /* for tests and the browser console */
})();
