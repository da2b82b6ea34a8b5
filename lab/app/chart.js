// A Plotly figure drawn with plotly.js's cartesian bundle (lab/app/static), the lab's light chart
// element (lab/app/chart.py: show). The bundle is loaded once per browser page, from the app's
// static files, and holds every trace type the lab draws (heatmap, scatter, image, bar); it is a
// third of the full plotly.js that Streamlit's own chart element loads.
// A selection comes back as Streamlit's plotly_chart gives it: {points: [{x, y, customdata,
// point_index, curve_number}], box: [{x: [x0, x1], y: [y0, y1]}]}.
const SRC = "app/static/plotly-cartesian.min.js";

function plotly() {
  if (!window.__labPlotly) {
    window.__labPlotly = new Promise((resolve, reject) => {
      if (window.Plotly) return resolve(window.Plotly);
      const s = document.createElement("script");
      s.src = new URL(SRC, document.baseURI).href;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { window.__labPlotly = null; reject(new Error("plotly.js did not load from " + s.src)); };
      document.head.appendChild(s);
    });
  }
  return window.__labPlotly;
}

function points(ev) {
  return ((ev && ev.points) || []).map(p => ({
    x: p.x, y: p.y, customdata: p.customdata, point_index: p.pointIndex ?? p.pointNumber,
    point_number: p.pointNumber, curve_number: p.curveNumber,
  }));
}

function boxes(ev) {
  const out = [];
  for (const s of (ev && ev.selections) || []) {
    if (s.type === "rect" || s.x0 !== undefined) {
      out.push({xref: s.xref, yref: s.yref, x: [Math.min(s.x0, s.x1), Math.max(s.x0, s.x1)],
                y: [Math.min(s.y0, s.y1), Math.max(s.y0, s.y1)]});
    }
  }
  if (!out.length && ev && ev.range && ev.range.x) {
    out.push({x: ev.range.x.slice(), y: ev.range.y.slice()});
  }
  return out;
}

function listen(gd, P) {
  // As Streamlit's own chart: clicks reach the selection through clickmode "event+select", so
  // plotly_selected carries both a clicked point and a dragged box. Only a learner's non-empty
  // selection that differs from the last one is sent (each send is a rerun); the empty
  // selections Plotly emits when a new figure replaces the old one are not.
  gd.on("plotly_selected", ev => {
    if (!ev || !gd.__labSend) return;
    const box = gd.__labModes.includes("box") ? boxes(ev) : [];
    const pts = box.length || gd.__labModes.includes("points") ? points(ev) : [];
    if (!pts.length && !box.length) return;
    const sel = {points: pts, box, lasso: [], point_indices: pts.map(p => p.point_index)};
    const text = JSON.stringify(sel);
    if (text === gd.__labLast) return;
    gd.__labLast = text;
    gd.__labSend(sel);
  });
  gd.on("plotly_relayout", ev => {           // the toolbar's drag mode changed: keep the click rule
    if (!ev || ev.dragmode === undefined) return;
    const modes = gd.__labModes, drag = ev.dragmode;
    const click = drag === "select" || drag === "lasso" ? "event" : modes.includes("points") ? "event+select" : "none";
    if (gd.layout.clickmode !== click) P.relayout(gd, {clickmode: click});
  });
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let gd = parentElement.querySelector(".lab-chart");
  if (!gd) {
    gd = document.createElement("div");
    gd.className = "lab-chart";
    gd.style.width = "100%";
    parentElement.appendChild(gd);
  }
  const fig = JSON.parse(data.figure);
  const layout = fig.layout = fig.layout || {};
  layout.template = data.template;                      // Streamlit's light chart theme (chart.py)
  gd.style.minHeight = (layout.height || 450) + "px";   // no jump while loading
  gd.__labModes = data.modes || [];
  gd.__labSend = gd.__labModes.length ? (sel) => setStateValue("selection", sel) : null;
  plotly().then(P => {
    const config = {displaylogo: false, responsive: true, displayModeBar: false, ...(data.config || {})};
    return P.react(gd, fig.data || [], layout, config).then(() => {
      if (!gd.__labListening) { gd.__labListening = true; listen(gd, P); }
    });
  }).catch(err => {
    gd.textContent = "This chart could not be drawn: " + err.message;
  });
}
