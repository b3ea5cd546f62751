/* cityops — the map of report points on /feedback: the province's boundary (served by the app) as an ECharts geo map, one
   scatter series per state with its name in the legend. Points are the public, rounded coordinates of the list's
   reports; redrawn when the live list is swapped in. */
document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("feedback-map");
  if (!box || !window.echarts) return;
  const colours = { open: "#e8a33d", overdue: "#d32f2f", closed: "#2e7d32" };
  const names = JSON.parse(box.dataset.names);
  let chart = null;
  function points() {
    const holder = document.getElementById("feedback-points");
    return holder ? JSON.parse(holder.textContent || "[]") : [];
  }
  function draw() {
    if (!chart) return;
    const all = points();
    chart.setOption({
      series: Object.keys(colours).map((state) => ({
        name: names[state], type: "scatter", coordinateSystem: "geo", symbolSize: 9,
        itemStyle: { color: colours[state], borderColor: "#fff", borderWidth: 1 },
        data: all.filter((p) => p.status === state).map((p) => ({ name: `${p.code} · ${p.category}`, value: p.value })),
      })),
    });
  }
  try {
    const answer = await fetch(box.dataset.boundary, { credentials: "same-origin" });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    window.echarts.registerMap("feedback-province", await answer.json());
  } catch (error) {
    box.textContent = error.message;
    return;
  }
  chart = window.echarts.init(box);
  chart.setOption({
    tooltip: { trigger: "item", formatter: (item) => item.name },
    legend: { top: 4, data: Object.keys(colours).map((state) => names[state]) },
    geo: { map: "feedback-province", roam: true, itemStyle: { areaColor: "#f4f6f8", borderColor: "#8a96a3" } },
    series: [],
  });
  draw();
  document.body.addEventListener("htmx:afterSwap", (event) => { if (event.target.id === "feedback-live") draw(); });
  window.addEventListener("resize", () => chart.resize());
});
