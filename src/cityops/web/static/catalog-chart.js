// The history chart of an indicator's page: reads the province series from the JSON API named in the chart's
// data-series-url, draws it with ECharts (served from /static/vendor/, loaded by the page before this module),
// marks the year's target and the alert thresholds, and fills a table of the same values for screen readers.
// Every text comes translated from data-text-* attributes; nothing is loaded from another host.

const MAX_PAGES = 4; // 4 × 5,000 values: more than a chart can show legibly

function text(box, name, params = {}) {
  const template = box.dataset[`text${name[0].toUpperCase()}${name.slice(1)}`] || "";
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
}

function numberFormat(lang) {
  return new Intl.NumberFormat(lang === "vi" ? "vi-VN" : "en-US", { maximumFractionDigits: 2 });
}

function withUnit(formatted, unit) {
  if (!unit) return formatted;
  return unit === "%" ? `${formatted}%` : `${formatted} ${unit}`;
}

async function fetchSeries(url) {
  const items = [];
  let next = new URL(url, window.location.origin);
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await fetch(next, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const body = await answer.json();
    items.push(...body.items);
    if (body.offset + body.items.length >= body.total || body.items.length === 0) break;
    next = new URL(next);
    next.searchParams.set("offset", String(body.offset + body.items.length));
  }
  return items;
}

function say(box, message, state) {
  box.replaceChildren();
  const paragraph = document.createElement("p");
  paragraph.className = "nodata chart-message";
  paragraph.textContent = message;
  box.append(paragraph);
  box.setAttribute("aria-label", message);
  box.dataset.state = state;
}

function fillTable(points, format, unit) {
  const details = document.getElementById("history-table");
  if (!details) return;
  const body = details.querySelector("tbody");
  body.replaceChildren(
    ...points.map(([period, value]) => {
      const row = document.createElement("tr");
      const periodCell = document.createElement("td");
      periodCell.textContent = period;
      const valueCell = document.createElement("td");
      valueCell.className = "num";
      valueCell.textContent = value === null ? "—" : withUnit(format.format(value), unit);
      row.append(periodCell, valueCell);
      return row;
    }),
  );
  details.hidden = false;
}

// A "nice" step for about five grid lines: 1, 2, 2.5 or 5 times a power of ten.
function niceStep(span) {
  const rough = span / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].find((factor) => factor * power >= rough);
  return step * power;
}

// The value axis: every value and line in view, on round numbers, within the indicator's valid range.
function axisRange(levels, validMin, validMax) {
  let low = Math.min(...levels);
  let high = Math.max(...levels);
  if (low === high) {
    const spread = Math.abs(low) * 0.1 || 1;
    low -= spread;
    high += spread;
  }
  const step = niceStep(high - low);
  low = Math.floor((low - step / 2) / step) * step;
  high = Math.ceil((high + step / 2) / step) * step;
  if (validMin !== undefined && validMin !== "") low = Math.max(low, Number(validMin));
  if (validMax !== undefined && validMax !== "") high = Math.min(high, Number(validMax));
  return [low, high];
}

function markLines(box) {
  const lines = [];
  const add = (value, name, color, type) => {
    if (value === undefined || value === "") return;
    const number = Number(value);
    if (Number.isFinite(number)) lines.push({ yAxis: number, name, lineStyle: { color, type }, label: { color } });
  };
  add(box.dataset.target, text(box, "target"), "#1e7b34", "dashed");
  add(box.dataset.warning, text(box, "warning"), "#8a5a00", "dotted");
  add(box.dataset.critical, text(box, "critical"), "#b3261e", "dotted");
  return lines;
}

function draw(box, items) {
  const lang = box.dataset.lang || "vi";
  const unit = box.dataset.unit || "";
  const format = numberFormat(lang);
  const moments = new Intl.DateTimeFormat(lang === "vi" ? "vi-VN" : "en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  // An instant's period is a UTC timestamp: shown as the province's local day and time.
  const label = (item) => (box.dataset.periodType === "instant" ? moments.format(new Date(item.period_start)) : item.period);
  const points = items.map((item) => [label(item), item.value]);
  const values = points.map(([, value]) => value).filter((value) => value !== null);
  if (values.length === 0) {
    say(box, text(box, "empty"), "empty");
    return;
  }
  const lines = markLines(box);
  const [low, high] = axisRange([...values, ...lines.map((line) => line.yAxis)], box.dataset.min, box.dataset.max);
  box.replaceChildren();
  const chart = window.echarts.init(box, null, { renderer: "svg", locale: "EN" });
  chart.setOption({
    animationDuration: 300,
    textStyle: { fontFamily: '"Noto Sans", "DejaVu Sans", sans-serif' },
    grid: { left: 12, right: 24, top: 28, bottom: 12, containLabel: true },
    tooltip: {
      trigger: "axis",
      valueFormatter: (value) => (value === null || value === undefined ? "—" : withUnit(format.format(value), unit)),
    },
    xAxis: { type: "category", data: points.map(([period]) => period), boundaryGap: false },
    yAxis: { type: "value", min: low, max: high, axisLabel: { formatter: (value) => format.format(value) } },
    series: [
      {
        type: "line",
        name: box.dataset.name || "",
        data: points.map(([, value]) => value),
        showSymbol: true,
        symbolSize: 7,
        connectNulls: false,
        lineStyle: { width: 2, color: "#0b5394" },
        itemStyle: { color: "#0b5394" },
        markLine: lines.length
          ? {
              symbol: "none",
              silent: true,
              label: {
                position: "insideEndTop",
                formatter: (line) => `${line.name}: ${withUnit(format.format(line.value), unit)}`,
              },
              data: lines,
            }
          : undefined,
      },
    ],
  });
  const last = items.filter((item) => item.value !== null).at(-1);
  box.setAttribute(
    "aria-label",
    text(box, "summary", {
      name: box.dataset.name || "",
      count: values.length,
      first: points[0][0],
      last: points.at(-1)[0],
      value: withUnit(format.format(last.value), unit),
      period: label(last),
    }),
  );
  box.dataset.points = String(values.length);
  // "drawn" once ECharts has finished rendering (after its short animation), for tests and for anyone waiting.
  const finished = () => {
    chart.off("finished", finished);
    box.dataset.state = "drawn";
  };
  chart.on("finished", finished);
  fillTable(points, format, unit);
  new ResizeObserver(() => chart.resize()).observe(box);
}

async function start() {
  const box = document.getElementById("history-chart");
  if (!box || !box.dataset.seriesUrl) return;
  if (!window.echarts) {
    say(box, text(box, "error"), "error");
    return;
  }
  let items;
  try {
    items = await fetchSeries(box.dataset.seriesUrl);
  } catch {
    say(box, text(box, "error"), "error");
    return;
  }
  draw(box, items);
}

start();
