// The subsystem boards: draws each indicator's trend (ECharts, canvas) from the data written into the page, with
// the target as a dashed line and the thresholds as marks; refreshes the board when a live `values` event names
// one of its indicators (only when /static/live.js is there: the page works without it).

const charts = new Set();

function numberFormat(lang) {
  return new Intl.NumberFormat(lang === "vi" ? "vi-VN" : "en-US", { maximumFractionDigits: 2 });
}

function withUnit(formatted, unit) {
  if (!unit) return formatted;
  return unit === "%" ? `${formatted}%` : `${formatted} ${unit}`;
}

function draw(box) {
  let data;
  try {
    data = JSON.parse(box.dataset.chart);
  } catch {
    return;
  }
  const format = numberFormat(data.lang);
  const show = (value) => (value === null || value === undefined ? "—" : withUnit(format.format(value), data.unit));
  const lines = [];
  const mark = (value, name, color) => {
    if (value !== null && value !== undefined) lines.push({ yAxis: value, name, lineStyle: { color, type: "dotted" }, label: { color } });
  };
  mark(data.warning, data.text.warning, "#8a5a00");
  mark(data.critical, data.text.critical, "#b3261e");
  const series = [
    {
      type: "line",
      name: data.text.value,
      data: data.values,
      showSymbol: true,
      symbolSize: 6,
      connectNulls: false,
      lineStyle: { width: 2, color: "#0b5394" },
      itemStyle: { color: "#0b5394" },
      // Anomalies found by the insights (robust statistics): a red pin on their trend points.
      markPoint: (data.anomalies || []).length
        ? {
            symbol: "pin",
            symbolSize: 34,
            itemStyle: { color: "#b42318" },
            label: { color: "#ffffff", formatter: "!" },
            data: data.anomalies.map((a) => ({ name: a.kind, coord: [data.labels[a.index], data.values[a.index]] })),
          }
        : undefined,
      markLine: lines.length
        ? { symbol: "none", silent: true, label: { position: "insideEndTop", formatter: (l) => `${l.name}: ${show(l.value)}` }, data: lines }
        : undefined,
    },
  ];
  if (data.targets.some((value) => value !== null)) {
    series.push({
      type: "line",
      name: data.text.target,
      data: data.targets,
      step: "middle",
      showSymbol: false,
      lineStyle: { width: 2, type: "dashed", color: "#1e7b34" },
      itemStyle: { color: "#1e7b34" },
    });
  }
  const chart = window.echarts.init(box, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    textStyle: { fontFamily: '"Noto Sans", "DejaVu Sans", sans-serif' },
    grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
    legend: { top: 0, textStyle: { color: "#1b2430" } },
    tooltip: { trigger: "axis", valueFormatter: show },
    xAxis: { type: "category", data: data.labels, boundaryGap: false, axisLabel: { color: "#3d4756" } },
    yAxis: {
      type: "value",
      scale: true,
      min: data.min === null ? undefined : (extent) => Math.max(data.min, extent.min),
      max: data.max === null ? undefined : (extent) => Math.min(data.max, extent.max),
      axisLabel: { color: "#3d4756", formatter: (value) => format.format(value) },
    },
    series,
  });
  box.dataset.state = "drawn";
  charts.add(chart);
}

function drawAll(root) {
  if (!window.echarts) return;
  root.querySelectorAll(".board-trend[data-chart]").forEach(draw);
}

function resizeAll() {
  charts.forEach((chart) => chart.resize());
}

let pending = null;

async function refresh() {
  pending = null;
  const board = document.getElementById("board");
  if (!board) return;
  let answer;
  try {
    answer = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
  } catch {
    return;
  }
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById("board");
  if (!fresh) return;
  charts.forEach((chart) => chart.dispose());
  charts.clear();
  board.replaceWith(fresh);
  drawAll(fresh);
}

function start() {
  const board = document.getElementById("board");
  if (!board) return;
  drawAll(board);
  window.addEventListener("resize", resizeAll);
  if (!window.cityopsLive) return;
  window.cityopsLive.on("values", (payload) => {
    const mine = new Set((document.getElementById("board")?.dataset.indicators || "").split(" "));
    const names = (payload && payload.indicators) || [];
    // After a reconnection events may have been missed: read the board again.
    const reconnected = Boolean(payload && payload.reconnected);
    if ((!reconnected && !names.some((code) => mine.has(code))) || pending) return;
    pending = window.setTimeout(refresh, 500); // a burst of batches refreshes once
  });
}

start();
