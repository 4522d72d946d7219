// tradestate dashboard: polls the read-only JSON API and renders it.
// Every value from the server is put on the page with textContent, never
// as HTML, so names such as "<script>" show as text.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  let refreshMs = 2000;
  let lastVersion = null;
  let lastOk = null;        // Date of the last successful refresh
  let chart = null;
  let timer = null;

  // ---- formatting (money arrives as integer paise: exact) -------------
  // Grouping follows config.toml's [display] money_grouping, sent by the
  // server, so the page groups as the console does; the sign comes first.
  let grouping = "western";
  function group(digits) {
    if (digits.length <= 3) return digits;
    if (grouping !== "indian") return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const last3 = digits.slice(-3);
    const rest = digits.slice(0, -3).replace(/\B(?=(\d{2})+(?!\d))/g, ",");
    return rest + "," + last3;
  }
  function rupees(paise) {
    if (typeof paise !== "number" || !Number.isFinite(paise)) return "—";
    const neg = paise < 0;
    const abs = Math.abs(paise);
    const whole = Math.floor(abs / 100);
    const frac = abs % 100;
    return (neg ? "-" : "") + "\u20b9" + group(String(whole)) + "." + String(frac).padStart(2, "0");
  }
  function chartRupees(v, decimals) {
    if (v == null) return "—";
    const paise = Math.round(v * 100);
    const s = rupees(paise);
    return decimals ? s : s.slice(0, -3);
  }
  function signedRupees(paise) {
    return (paise > 0 ? "+" : "") + rupees(paise);
  }
  function percentFromBp(bp) {
    if (typeof bp !== "number") return "";
    const neg = bp < 0;
    const abs = Math.abs(bp);
    return (neg ? "-" : bp > 0 ? "+" : "") + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0") + "%";
  }
  // Times: IST, 24-hour, with the zone written out, whatever the browser's
  // own zone (the trading day is Indian; the console and listings agree).
  const IST_MS = (5 * 60 + 30) * 60 * 1000;
  const pad2 = (n) => String(n).padStart(2, "0");
  function istParts(ms) {
    const d = new Date(ms + IST_MS);
    return {
      date: d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()),
      clock: pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds()),
    };
  }
  function istDateTime(ms) { const p = istParts(ms); return p.date + " " + p.clock + " IST"; }
  function istClock(ms) { return istParts(ms).clock + " IST"; }
  function when(iso) {
    if (!iso) return "—";
    let s = String(iso).replace(" ", "T");
    if (!/(Z|[+-]\d\d:\d\d)$/.test(s)) s += "+05:30"; // no offset: IST, as the seed writes
    const ms = Date.parse(s);
    return Number.isFinite(ms) ? istDateTime(ms) : String(iso);
  }
  function setText(id, text) { $(id).textContent = text; }
  function setSigned(id, paise, text) {
    const el = $(id);
    el.textContent = text;
    el.classList.toggle("up", paise > 0);
    el.classList.toggle("down", paise < 0);
  }
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function signedCell(row, paise) {
    const td = cell(row, signedRupees(paise), "num");
    if (paise > 0) td.classList.add("up");
    if (paise < 0) td.classList.add("down");
  }
  function fillTable(tableId, emptyId, rows, render) {
    const body = $(tableId).querySelector("tbody");
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement("tr");
      render(tr, r);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    if (emptyId) $(emptyId).hidden = rows.length > 0;
  }

  // ---- rendering --------------------------------------------------------
  function renderState(d) {
    setText("session", d.session || "—");
    const badge = $("source-badge");
    badge.textContent = d.status === "live" ? "live" : d.status === "saved" ? "saved state" : d.status || "—";
    badge.className = "badge " + (d.status === "live" ? "live" : d.status === "saved" ? "saved" : "");
    const banner = $("banner");
    if (d.notice) { banner.textContent = d.notice; banner.hidden = false; } else { banner.hidden = true; }

    const s = d.state;
    if (!s) {
      for (const id of ["total-value", "total-pnl", "cash", "active-positions", "trading-mode", "iteration", "last-saved"]) setText(id, "—");
      fillTable("positions", "positions-empty", [], () => {});
      fillTable("trades", "trades-empty", [], () => {});
      return;
    }
    const m = s.summary || {};
    setText("total-value", rupees(m.total_value_paise));
    setSigned("total-pnl", m.total_pnl_paise, signedRupees(m.total_pnl_paise));
    setSigned("total-pnl-pct", m.total_pnl_bp, percentFromBp(m.total_pnl_bp));
    setText("cash", rupees(m.cash_paise));
    setText("initial-cash", "of " + rupees(m.initial_cash_paise) + " initial");
    setText("active-positions", String(m.active_positions ?? (s.positions || []).length));
    setText("trades-count", (m.trades_count ?? 0) + " trades");
    setText("trading-mode", s.trading_mode || "—");
    setText("iteration", String(s.iteration ?? "—"));
    setText("last-saved", s.last_saved ? when(s.last_saved) : "not saved yet");

    fillTable("positions", "positions-empty", s.positions || [], (tr, p) => {
      tr.dataset.symbol = p.symbol;
      cell(tr, p.symbol);
      cell(tr, p.strategy);
      cell(tr, String(p.quantity), "num");
      cell(tr, p.lots == null ? "—" : String(p.lots), "num");
      cell(tr, rupees(p.entry_price_paise), "num");
      cell(tr, rupees(p.last_price_paise), "num");
      cell(tr, p.stop_loss_paise == null ? "—" : rupees(p.stop_loss_paise), "num");
      cell(tr, p.take_profit_paise == null ? "—" : rupees(p.take_profit_paise), "num");
      signedCell(tr, p.unrealized_pnl_paise);
      cell(tr, when(p.entry_time));
    });
    fillTable("trades", "trades-empty", s.trades || [], (tr, t) => {
      cell(tr, when(t.time));
      cell(tr, t.side);
      cell(tr, t.symbol);
      cell(tr, t.strategy);
      cell(tr, String(t.quantity), "num");
      cell(tr, rupees(t.price_paise), "num");
      if (t.realized_pnl_paise == null) cell(tr, "", "num"); else signedCell(tr, t.realized_pnl_paise);
      cell(tr, t.reason || "");
    });
  }

  function renderSessions(d) {
    fillTable("sessions", null, d.sessions || [], (tr, x) => {
      cell(tr, x.session);
      cell(tr, when(x.saved_at));
      cell(tr, String(x.iteration), "num");
      cell(tr, String(x.positions), "num");
      cell(tr, rupees(x.cash_paise), "num");
      cell(tr, x.location || "");
    });
  }

  function renderHistory(h) {
    const t = h.t || [];
    $("chart-empty").hidden = t.length > 0;
    if (typeof uPlot === "undefined") {
      $("chart-empty").hidden = false;
      $("chart-empty").textContent = "Chart library not bundled into this build (run scripts/bootstrap-web and rebuild).";
      return;
    }
    const toRupees = (a) => (a || []).map((p) => p / 100);   // chart only; tables use exact paise
    const data = [t, toRupees(h.total_value_paise), toRupees(h.realized_pnl_paise)];
    const el = $("chart");
    if (!chart) {
      const fmt = (v) => chartRupees(v, true);
      // uPlot shows a Date's local fields: a Date shifted so they read IST.
      const tzDate = (ts) => { const d = new Date(ts * 1000 + IST_MS);
        return new Date(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()); };
      chart = new uPlot({
        tzDate,
        fmtDate: (tpl) => uPlot.fmtDate(tpl.replace(/\{h\}\{aa\}/g, "{HH}:{mm}").replace(/\{h\}/g, "{HH}").replace(/\{a+\}|\{A+\}/gi, "")),
        width: Math.max(300, el.clientWidth - 16),
        height: 260,
        scales: { x: { time: true }, value: {}, pnl: {} },
        series: [
          { value: (u, ts) => ts == null ? "—" : istDateTime(ts * 1000) },
          { label: "Total value", scale: "value", stroke: "#2f5bd3", width: 2, value: (u, v) => fmt(v) },
          { label: "Realized P&L", scale: "pnl", stroke: "#c07a00", width: 1.5, dash: [6, 4], value: (u, v) => fmt(v) },
        ],
        axes: [
          {},
          { scale: "value", size: 90, values: (u, vals) => vals.map((v) => chartRupees(v, false)) },
          { scale: "pnl", side: 1, size: 80, grid: { show: false }, values: (u, vals) => vals.map((v) => chartRupees(v, false)) },
        ],
      }, data, el);
      window.addEventListener("resize", () => chart.setSize({ width: Math.max(300, el.clientWidth - 16), height: 260 }));
    } else {
      chart.setData(data);
    }
  }

  // ---- polling ------------------------------------------------------------
  async function getJson(path) {
    const ctl = new AbortController();
    const to = setTimeout(() => ctl.abort(), Math.max(3000, refreshMs * 2));
    try {
      const r = await fetch(path, { cache: "no-store", signal: ctl.signal });
      if (!r.ok) throw new Error(path + " answered HTTP " + r.status);
      return await r.json();
    } finally {
      clearTimeout(to);
    }
  }

  function showStale(err) {
    const el = $("stale");
    const since = lastOk ? " Showing data from " + istClock(lastOk.getTime()) + "." : "";
    el.textContent = "Data may be stale: refresh failed (" + (err && err.message ? err.message : String(err)) + ")." + since;
    el.hidden = false;
    $("source-badge").textContent = "stale";
    $("source-badge").className = "badge error";
  }

  async function tick() {
    try {
      const d = await getJson("/api/state");
      if (typeof d.refresh_ms === "number" && d.refresh_ms >= 200 && d.refresh_ms !== refreshMs) {
        refreshMs = d.refresh_ms;
      }
      if (d.money_grouping === "indian" || d.money_grouping === "western") grouping = d.money_grouping;
      renderState(d);
      if (d.version !== lastVersion) {
        const [h, ss] = await Promise.all([getJson("/api/history"), getJson("/api/sessions")]);
        renderHistory(h);
        renderSessions(ss);
        lastVersion = d.version;
      }
      lastOk = new Date();
      $("stale").hidden = true;
      setText("updated", "updated " + istClock(lastOk.getTime()));
      document.body.dataset.version = String(d.version);
    } catch (e) {
      showStale(e);
    } finally {
      timer = setTimeout(tick, refreshMs);
    }
  }

  tick();
  window.tradestateDashboard = { refreshNow: () => { clearTimeout(timer); return tick(); } };
})();
