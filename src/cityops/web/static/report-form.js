/* cityops — the citizen's report form (/report): shows the questions of the chosen category, and a map of the province
   (ECharts, the boundary served by the app) on which a click sets the report's point. Without scripts the form works
   with typed coordinates. */
(function () {
  "use strict";
  function start() {
    var select = document.getElementById("category");
    function showAttributes() {
      document.querySelectorAll(".fb-attributes").forEach(function (box) {
        box.hidden = box.getAttribute("data-category") !== select.value;
      });
    }
    select.addEventListener("change", showAttributes);
    showAttributes();
    if (!window.echarts || !window.fetch) { return; }
    var box = document.getElementById("report-map");
    var lat = document.getElementById("latitude"), lon = document.getElementById("longitude");
    var chosen = document.getElementById("point-chosen"), text = document.getElementById("point-text");
    var clear = document.getElementById("point-clear");
    var communes = JSON.parse(document.getElementById("communes-data").textContent);
    box.hidden = false;
    document.getElementById("map-hint").hidden = false;
    clear.hidden = false;
    fetch("/report/map/boundary.geojson").then(function (r) { return r.json(); }).then(function (shape) {
      window.echarts.registerMap("tinh", shape);
      var chart = window.echarts.init(box);
      function marker() {
        return lat.value ? [{ value: [parseFloat(lon.value), parseFloat(lat.value)] }] : [];
      }
      function draw() {
        chart.setOption({
          geo: { map: "tinh", roam: true, itemStyle: { areaColor: "#eef3f8", borderColor: "#5b7a99" },
                 emphasis: { disabled: true } },
          tooltip: { trigger: "item", formatter: function (p) { return p.name || ""; } },
          series: [
            { type: "scatter", coordinateSystem: "geo", symbolSize: 4, itemStyle: { color: "#8aa1b8" },
              data: communes.filter(function (c) { return c.lat !== null; })
                .map(function (c) { return { name: c.name, value: [c.lon, c.lat] }; }) },
            { type: "scatter", coordinateSystem: "geo", symbol: "pin", symbolSize: 30, itemStyle: { color: "#c0392b" },
              data: marker() }
          ]
        });
      }
      draw();
      chart.getZr().on("click", function (event) {
        var point = chart.convertFromPixel("geo", [event.offsetX, event.offsetY]);
        if (!point) { return; }
        lon.value = point[0].toFixed(6);
        lat.value = point[1].toFixed(6);
        text.textContent = lat.value + ", " + lon.value;
        chosen.hidden = false;
        draw();
      });
      clear.addEventListener("click", function () {
        lat.value = ""; lon.value = ""; chosen.hidden = true; draw();
      });
      window.addEventListener("resize", function () { chart.resize(); });
    }).catch(function () { box.hidden = true; });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
