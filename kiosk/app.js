// packd kiosk reference page: one brief over MQTT v5 (WebSockets), one reply rendered.
// No build step: plain browser JavaScript, mqtt.js is vendored in vendor/mqtt.min.js.
//
// Query parameters (all optional):
//   broker  ws:// or wss:// URL of the broker's WebSockets listener (default ws://<page host>:9001)
//   device  appliance id, briefs go to {prefix}/devices/{device}/briefs (default "local")
//   pool    pool name instead of a device: {prefix}/pools/{pool}/briefs
//   prefix  topic prefix (default packd/v1)
//   lang    en | zh (default: the browser's language)
//   top_k   1–10 (default 3)
//   preview 0 turns off the front-panel mock-up (the brief's `render`; on by default)
//   timeout seconds to wait for a reply (default 15)
//   username, password   broker credentials, when the listener needs them; with a username,
//                        replies come to {prefix}/replies/{username}/kiosk-<random>
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const pageHost = location.hostname || "localhost";
  const defaultBroker = (location.protocol === "https:" ? "wss://" : "ws://") + pageHost + ":9001";
  const cfg = {
    broker: params.get("broker") || defaultBroker,
    device: params.get("device") || "local",
    pool: params.get("pool") || "",
    prefix: (params.get("prefix") || "packd/v1").replace(/\/+$/, ""),
    topK: clampInt(params.get("top_k"), 1, 10, 3),
    preview: params.get("preview") !== "0",
    timeoutMs: clampInt(params.get("timeout"), 1, 120, 15) * 1000,
    username: params.get("username") || undefined,
    password: params.get("password") || undefined,
  };
  const session = "kiosk-" + randomId(8);
  // Replies come back under the account's own subtree when the page logs in, as the example ACL
  // (docs/mosquitto-acl.conf: `pattern read packd/v1/replies/%u/#`) lets each account read only
  // packd/v1/replies/<its username>/#; without a username (an anonymous broker) directly under
  // replies/. A username that cannot be a topic level (wildcards) keeps the anonymous form.
  const replyTopic = cfg.username && !/[+#\u0000]/.test(cfg.username)
    ? `${cfg.prefix}/replies/${cfg.username}/${session}`
    : `${cfg.prefix}/replies/${session}`;
  const briefTopic = cfg.pool
    ? `${cfg.prefix}/pools/${cfg.pool}/briefs`
    : `${cfg.prefix}/devices/${cfg.device}/briefs`;
  const stateTopic = cfg.pool ? null : `${cfg.prefix}/devices/${cfg.device}/state`;

  // ---------------------------------------------------------------- text
  const T = {
    en: {
      title: "Design your pack",
      subtitle: "Pick what you sell and how it should feel. The designer answers in a moment.",
      product: "Product", audience: "Who is it for", mood: "Mood", occasion: "Occasion",
      palette: "Colour family", brand: "Brand colours", photo: "Reference photo",
      pick_one: "pick one", pick_any: "any number", optional: "optional", up_to_4: "up to 4",
      camera: "Camera", choose_file: "Choose photo", more: (n) => `+ ${n} more`, less: "Fewer", reset: "Start over", send: "Design it",
      working: "Designing…", result: "Your design", palettes: "Colour palettes",
      styles: "Style match", fonts: "Font pairings", layout: "Where things go on the front",
      mockup: "Front panel mock-up", template: "layout template",
      cancel: "Cancel", shoot: "Take photo",
      conn_connecting: "Connecting…", conn_online: "Designer ready", conn_offline: "Designer offline",
      conn_degraded: "Designer degraded", conn_broker: "Connected", conn_down: "No connection",
      pick_product: "Choose a product to start",
      packd_time: "designer", round_trip: "round trip", backend: "on",
      contrast: "text contrast", roles: { background: "background", primary: "primary", accent: "accent", text: "text" },
      heat: { logo: "Logo", product: "Product", text: "Text" },
      font_missing: "shown in a stand-in font (not installed here)",
      sample_heading: (p) => p ? capital(p) : "Fresh & Bright",
      sample_body: "Made with care, packed to be seen on the shelf.",
      sample_cjk: "清爽好味道",
      warnings: "Not understood, so left out:",
      understood: "What the appliance understood",
      u_fields: { product: "Product", audience: "Who is it for", mood: "Mood", palette: "Colour family", keywords: "Keywords" },
      u_groups: { product: "product", audience: "audience", mood: "mood", season: "season", occasion: "occasion",
        palette: "colour family", keyword: "keyword", style: "style" },
      u_via: { exact: "exact", synonym: "synonym", contains: "contains", encoder: (p) => p == null ? "by meaning" : `by meaning, ${p} %` },
      footer: (c) => `Device ${c}`,
      err: {
        overloaded: (s) => `The designer is busy right now. Please try again in ${s} second${s === 1 ? "" : "s"}.`,
        bad_image: "That photo could not be read. Please choose another photo.",
        too_large: "That photo is too large. Please choose a smaller photo.",
        bad_request: "The designer could not accept this brief. Please change it and try again.",
        unsupported_version: "This page does not match the designer's version. Please ask a member of staff.",
        expired: "The designer took too long to start on this brief. Please try again.",
        no_model: "The designer has no design model loaded. Please ask a member of staff.",
        internal: "Something went wrong in the designer. Please try again.",
        timeout: "The designer did not answer. Please check that it is switched on, then try again.",
        not_connected: "This screen is not connected to the designer. It keeps trying to reconnect.",
        camera: "The camera could not be opened. Please choose a photo instead.",
        unknown: (c) => `The designer refused this brief (${c}). Please try again.`,
      },
    },
    zh: {
      title: "设计你的包装",
      subtitle: "选择产品和想要的感觉，设计助手马上给出方案。",
      product: "产品", audience: "目标人群", mood: "风格感受", occasion: "场景节日",
      palette: "色系", brand: "品牌色", photo: "参考图片",
      pick_one: "单选", pick_any: "可多选", optional: "可选", up_to_4: "最多 4 个",
      camera: "拍照", choose_file: "选择图片", more: (n) => `更多 ${n} 项`, less: "收起", reset: "重新开始", send: "生成设计",
      working: "正在设计…", result: "设计方案", palettes: "配色方案",
      styles: "风格匹配", fonts: "字体搭配", layout: "正面版式布局",
      mockup: "正面效果图", template: "版式模板",
      cancel: "取消", shoot: "拍照",
      conn_connecting: "正在连接…", conn_online: "设计助手已就绪", conn_offline: "设计助手离线",
      conn_degraded: "设计助手降级运行", conn_broker: "已连接", conn_down: "未连接",
      pick_product: "请先选择一个产品",
      packd_time: "设计耗时", round_trip: "往返", backend: "运行于",
      contrast: "文字对比度", roles: { background: "背景", primary: "主色", accent: "点缀", text: "文字" },
      heat: { logo: "标志", product: "产品图", text: "文字" },
      font_missing: "本机未安装，以相近字体代替",
      sample_heading: (p) => p ? `${p}新品` : "清爽新品",
      sample_body: "用心制作，在货架上一眼被看见。",
      sample_cjk: "清爽好味道",
      warnings: "以下内容未能识别，已忽略：",
      understood: "设备理解为",
      u_fields: { product: "产品", audience: "目标人群", mood: "风格感受", palette: "色系", keywords: "关键词" },
      u_groups: { product: "产品", audience: "人群", mood: "风格", season: "季节", occasion: "场景节日",
        palette: "色系", keyword: "关键词", style: "风格" },
      u_via: { exact: "精确匹配", synonym: "同义词", contains: "包含词语", encoder: (p) => p == null ? "语义匹配" : `语义匹配 ${p}%` },
      footer: (c) => `设备 ${c}`,
      err: {
        overloaded: (s) => `设计助手正忙，请 ${s} 秒后再试。`,
        bad_image: "这张图片无法读取，请换一张图片。",
        too_large: "这张图片太大了，请换一张小一些的图片。",
        bad_request: "设计助手无法接受这个需求，请修改后再试。",
        unsupported_version: "本页面与设计助手的版本不匹配，请联系店员。",
        expired: "设计助手未能及时开始处理，请再试一次。",
        no_model: "设计助手尚未加载设计模型，请联系店员。",
        internal: "设计助手出了点问题，请再试一次。",
        timeout: "设计助手没有回应，请确认设备已开启后再试。",
        not_connected: "本屏幕未连接到设计助手，正在自动重连。",
        camera: "无法打开摄像头，请改为选择图片。",
        unknown: (c) => `设计助手拒绝了这个需求（${c}），请再试一次。`,
      },
    },
  };

  // ---------------------------------------------------------------- state
  const state = {
    lang: pickLang(params.get("lang")),
    terms: null,
    selected: { product: new Set(), audience: new Set(), mood: new Set(), occasion: new Set(), palette: new Set() },
    brandColors: [],
    photo: null, // { base64, url }
    connected: false,
    device: null, // retained state document
    pending: null, // { corr, started, timer }
    lastReply: null,
    seq: 0,
    expanded: new Set(),
  };
  const $ = (id) => document.getElementById(id);
  const t = () => T[state.lang];

  // ---------------------------------------------------------------- helpers
  function clampInt(v, lo, hi, dflt) {
    const n = parseInt(v, 10);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt;
  }
  function randomId(n) {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
  }
  function pickLang(q) {
    if (q === "zh" || q === "en") return q;
    return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  }
  function motion() { return matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth"; }
  function capital(s) { return s.replace(/\b\w/g, (c) => c.toUpperCase()); }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "style") e.style.cssText = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  }
  function hex6(h) {
    let s = String(h || "").trim();
    if (/^#[0-9a-f]{3}$/i.test(s)) s = "#" + s.slice(1).split("").map((c) => c + c).join("");
    return /^#[0-9a-f]{6}$/i.test(s) ? s.toUpperCase() : null;
  }
  function luminance(hex) {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function inkOn(hex) { return luminance(hex) > 0.35 ? "#111111" : "#FFFFFF"; }
  function toBase64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  function decodeCorr(cd) {
    if (cd == null) return null;
    if (typeof cd === "string") return cd;
    try { return new TextDecoder().decode(cd); } catch (_) { return String(cd); }
  }
  function label(row, id) {
    const term = state.terms && state.terms.rows[row].find((x) => x.id === id);
    return term ? term[state.lang] : id;
  }
  // A vocabulary id (`group:name`) as a store worker reads it: the chip's (or terms.json's label's)
  // word in the page's language; for a term the page does not know (a newer bundle's vocabulary),
  // the id's name with spaces, so `product:energy_drink` is "energy drink".
  function termLabel(id) {
    const s = String(id);
    const colon = s.indexOf(":");
    const group = colon > 0 ? s.slice(0, colon) : "";
    const name = (colon > 0 ? s.slice(colon + 1) : s).replace(/_/g, " ");
    let known = state.terms && state.terms.labels && Object.prototype.hasOwnProperty.call(state.terms.labels, s) ? state.terms.labels[s] : null;
    if (!known && state.terms) {
      for (const row of Object.values(state.terms.rows)) { known = row.find((x) => x.id === s); if (known) break; }
    }
    return { group, text: (known && known[state.lang]) || name };
  }

  // A font is "here" when the page bundles it (kiosk/fonts/fonts.css, loaded on first use) or,
  // for one installed on the device, when text drawn in it measures differently from both
  // generic fallbacks.
  const fontCache = new Map();
  let bundledFonts = null;
  function isBundled(family) {
    if (!bundledFonts) {
      bundledFonts = new Set();
      if (document.fonts) for (const face of document.fonts) bundledFonts.add(face.family.replace(/^["']|["']$/g, ""));
    }
    return bundledFonts.has(family);
  }
  function fontAvailable(family) {
    if (fontCache.has(family)) return fontCache.get(family);
    if (isBundled(family)) { fontCache.set(family, true); return true; }
    const ctx = document.createElement("canvas").getContext("2d");
    const sample = "mmmmmmmmmmlli WwQq 汉字测试 0123";
    let here = false;
    for (const generic of ["monospace", "serif", "sans-serif"]) {
      ctx.font = `40px ${generic}`;
      const base = ctx.measureText(sample).width;
      ctx.font = `40px "${family}", ${generic}`;
      if (ctx.measureText(sample).width !== base) { here = true; break; }
    }
    fontCache.set(family, here);
    return here;
  }
  function generic(family) {
    return /serif|display|playfair|garamond|baskerville|bodoni|song|ming|宋|明|lora|merriweather|didot|times|georgia/i.test(family)
      && !/sans/i.test(family) ? "serif" : "sans-serif";
  }
  function fontStack(latin, cjk) {
    const parts = [latin, cjk].filter(Boolean).map((f) => `"${f.replace(/"/g, "")}"`);
    return parts.concat([generic(latin || cjk || "")]).join(", ");
  }

  // ---------------------------------------------------------------- static text and chips
  function applyText() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.body.dataset.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const v = t()[node.dataset.i18n];
      if (typeof v === "string") node.textContent = v;
    }
    for (const b of document.querySelectorAll(".lang-btn")) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
    renderChips();
    renderConn();
    updateSend();
    if (state.lastReply) renderReply(state.lastReply.body, state.lastReply.rtt);
    if (state.lastError) showError(state.lastError);
    $("foot").textContent = `${t().footer(cfg.pool ? "pool " + cfg.pool : cfg.device)} · ${cfg.broker} · ${session}`;
  }

  function renderChips() {
    if (!state.terms) return;
    for (const box of document.querySelectorAll(".chips")) {
      const row = box.dataset.row;
      box.replaceChildren();
      const all = state.terms.rows[row];
      const open = state.expanded.has(row) || all.length <= SHOWN[row] + 2;
      for (const [i, term] of all.entries()) {
        const on = state.selected[row].has(term.id);
        if (!open && i >= SHOWN[row] && !on) continue;
        const chip = el("button", {
          type: "button", class: "chip" + (on ? " on" : ""), "data-id": term.id,
          "aria-pressed": String(on), "data-testid": `chip-${term.id}`,
        }, term[state.lang]);
        chip.addEventListener("click", () => toggle(row, term.id, box.dataset.mode));
        box.append(chip);
      }
      if (all.length > SHOWN[row] + 2) {
        const more = el("button", { type: "button", class: "chip more", "data-testid": `more-${row}`, "data-open": String(open) },
          open ? t().less : t().more(all.length - SHOWN[row]));
        more.addEventListener("click", () => {
          if (state.expanded.has(row)) state.expanded.delete(row); else state.expanded.add(row);
          renderChips();
        });
        box.append(more);
      }
    }
  }
  // chips shown before "More": the rest are one tap away, so the brief fits one portrait screen
  const SHOWN = { product: 11, audience: 7, mood: 13, occasion: 6, palette: 9 };

  function toggle(row, id, mode) {
    const set = state.selected[row];
    if (set.has(id)) set.delete(id);
    else { if (mode === "one") set.clear(); set.add(id); }
    renderChips();
    updateSend();
  }

  function updateSend() {
    const ready = state.selected.product.size > 0;
    const btn = $("send");
    btn.disabled = !ready || !!state.pending;
    btn.title = ready ? "" : t().pick_product;
  }

  // ---------------------------------------------------------------- brand colours
  function renderBrandColors() {
    const box = $("brand-colors");
    for (const n of box.querySelectorAll(".bc")) n.remove();
    state.brandColors.forEach((hex, i) => {
      const input = el("input", { type: "color", value: hex.toLowerCase(), "aria-label": `brand colour ${i + 1}` });
      input.addEventListener("input", () => { state.brandColors[i] = input.value.toUpperCase(); tag.textContent = state.brandColors[i]; });
      const tag = el("span", { class: "bc-hex" }, hex);
      const del = el("button", { type: "button", class: "bc-del", "aria-label": "remove" }, "✕");
      del.addEventListener("click", () => { state.brandColors.splice(i, 1); renderBrandColors(); });
      box.insertBefore(el("div", { class: "bc" }, input, tag, del), $("add-color"));
    });
    $("add-color").hidden = state.brandColors.length >= 4;
  }

  // ---------------------------------------------------------------- photo
  async function takePhoto(blob) {
    const raw = new Uint8Array(await blob.arrayBuffer());
    let bytes = raw;
    // Shrink big photos in the browser (packd takes at most 4 MiB, 40 MP). A file the browser
    // cannot decode is sent as it is, so the designer's own verdict (bad_image) is what shows.
    try {
      const bmp = await createImageBitmap(blob);
      const side = Math.max(bmp.width, bmp.height);
      if (side > 1600 || raw.length > 3 * 1024 * 1024) {
        const k = 1600 / side;
        const c = document.createElement("canvas");
        c.width = Math.max(1, Math.round(bmp.width * Math.min(1, k)));
        c.height = Math.max(1, Math.round(bmp.height * Math.min(1, k)));
        c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
        const jpeg = await new Promise((res) => c.toBlob(res, "image/jpeg", 0.88));
        if (jpeg) bytes = new Uint8Array(await jpeg.arrayBuffer());
      }
      bmp.close && bmp.close();
    } catch (_) { /* undecodable here: let packd judge it */ }
    if (state.photo && state.photo.url) URL.revokeObjectURL(state.photo.url);
    state.photo = { base64: toBase64(bytes), url: URL.createObjectURL(blob) };
    $("photo-thumb").src = state.photo.url;
    $("photo-preview").hidden = false;
  }
  function clearPhoto() {
    if (state.photo && state.photo.url) URL.revokeObjectURL(state.photo.url);
    state.photo = null;
    $("photo-preview").hidden = true;
    $("photo-input").value = "";
  }
  let stream = null;
  async function openCamera() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      $("camera-video").srcObject = stream;
      $("camera").hidden = false;
    } catch (_) {
      showError({ kind: "camera" });
    }
  }
  function closeCamera() {
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null;
    $("camera").hidden = true;
  }
  async function shoot() {
    const v = $("camera-video");
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0);
    const blob = await new Promise((res) => c.toBlob(res, "image/jpeg", 0.9));
    closeCamera();
    if (blob) await takePhoto(blob);
  }

  // ---------------------------------------------------------------- MQTT
  let client = null;
  function connect() {
    client = mqtt.connect(cfg.broker, {
      protocolVersion: 5,
      clientId: session,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 8000,
      username: cfg.username,
      password: cfg.password,
    });
    client.on("connect", () => {
      state.connected = true;
      const subs = { [replyTopic]: { qos: 1 } };
      if (stateTopic) subs[stateTopic] = { qos: 1 };
      client.subscribe(subs);
      if (state.lastError && state.lastError.kind === "not_connected") hideError();
      renderConn();
    });
    client.on("close", () => { state.connected = false; renderConn(); });
    client.on("offline", () => { state.connected = false; renderConn(); });
    client.on("error", () => { /* reconnects on its own; the status pill says so */ });
    client.on("message", (topic, payload, packet) => {
      let body;
      try { body = JSON.parse(new TextDecoder().decode(payload)); } catch (_) { return; }
      if (topic === stateTopic) { state.device = body; renderConn(); return; }
      if (topic === replyTopic) onReply(body, decodeCorr(packet.properties && packet.properties.correlationData));
    });
  }

  function renderConn() {
    const node = $("conn");
    let s, text;
    if (!state.connected) { s = client ? "down" : "connecting"; text = client ? t().conn_down : t().conn_connecting; }
    else if (cfg.pool) { s = "online"; text = `${t().conn_broker} · ${cfg.pool}`; }
    else if (!state.device) { s = "connecting"; text = t().conn_broker; }
    else { s = state.device.status || "offline"; text = t()["conn_" + s] || s; }
    node.dataset.state = s;
    $("conn-text").textContent = text;
  }

  function buildBrief(id) {
    const pick = (row) => Array.from(state.selected[row], (tid) => label(row, tid));
    const brief = { v: 1, id, product: pick("product")[0], top_k: cfg.topK };
    const audience = pick("audience");
    const mood = pick("mood").concat(pick("occasion"));
    const palette = pick("palette")[0];
    if (audience.length) brief.audience = audience;
    if (mood.length) brief.mood = mood;
    if (palette) brief.palette = palette;
    if (state.brandColors.length) brief.brand_colors = state.brandColors.slice(0, 4);
    if (state.photo) brief.image = state.photo.base64;
    if (cfg.preview) brief.render = true;
    return brief;
  }

  function send() {
    if (state.pending || state.selected.product.size === 0) return;
    hideError();
    if (!state.connected) { showError({ kind: "not_connected" }); return; }
    const id = `${session}-${++state.seq}`;
    const brief = buildBrief(id);
    const started = performance.now();
    const timer = setTimeout(() => {
      state.pending = null;
      $("busy").hidden = true;
      updateSend();
      showError({ kind: "timeout" });
    }, cfg.timeoutMs);
    state.pending = { corr: id, started, timer };
    $("busy").hidden = false;
    updateSend();
    client.publish(briefTopic, JSON.stringify(brief), {
      qos: 1,
      properties: { responseTopic: replyTopic, correlationData: id, contentType: "application/json" },
    });
  }

  function onReply(body, corr) {
    const p = state.pending;
    if (!p || (corr || body.id) !== p.corr) return; // a late reply to a brief we gave up on
    clearTimeout(p.timer);
    state.pending = null;
    $("busy").hidden = true;
    updateSend();
    const rtt = performance.now() - p.started;
    if (body.status === "ok") {
      hideError();
      state.lastReply = { body, rtt };
      renderReply(body, rtt);
      $("result").scrollIntoView({ behavior: motion(), block: "start" });
    } else {
      const e = body.error || {};
      showError({ kind: "packd", code: e.code, message: e.message, retry: body.retry_after_ms });
    }
  }

  // ---------------------------------------------------------------- errors
  function errorText(err) {
    const E = t().err;
    if (err.kind !== "packd") return E[err.kind];
    switch (err.code) {
      case "overloaded": return E.overloaded(Math.max(1, Math.ceil((err.retry || 1000) / 1000)));
      case "bad_request": case "bad_image": case "too_large": case "unsupported_version":
      case "expired": case "no_model": case "internal": return E[err.code];
      default: return E.unknown(err.code || "?");
    }
  }
  function showError(err) {
    state.lastError = err;
    const b = $("error-banner");
    // one plain sentence in the page's language; packd's own message (English, for staff) as a
    // smaller second line, for bad_request only (it says which field), and as the title
    const detail = err.kind === "packd" && err.code === "bad_request" && err.message ? err.message : "";
    b.replaceChildren(el("span", { class: "err-text", "data-testid": "error-text" }, errorText(err)),
      ...(detail ? [el("span", { class: "err-detail", "data-testid": "error-detail" }, detail)] : []));
    b.title = err.kind === "packd" ? [err.code, err.message].filter(Boolean).join(": ") : "";
    b.dataset.code = err.code || err.kind;
    b.hidden = false;
    if (err.kind === "packd") { $("result").hidden = true; }
    b.scrollIntoView({ behavior: motion(), block: "center" });
  }
  function hideError() {
    state.lastError = null;
    $("error-banner").hidden = true;
  }

  // ---------------------------------------------------------------- the reply
  function renderReply(r, rtt) {
    const L = t();
    $("result").hidden = false;
    const ms = (r.timing_us && r.timing_us.total != null) ? r.timing_us.total / 1000 : null;
    $("latency").replaceChildren(
      el("span", { class: "lat-big", "data-testid": "latency-ms", "data-ms": ms != null ? ms.toFixed(3) : "" },
        ms != null ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : "–"),
      el("span", { class: "lat-small" }, `${L.packd_time} · ${L.round_trip} ${Math.round(rtt)} ms · ${L.backend} ${r.backend || "?"}`),
    );

    renderUnderstood(r.understood);

    const warn = $("warnings");
    if (r.warnings && r.warnings.length) {
      warn.replaceChildren(el("b", {}, L.warnings + " "), r.warnings.join(" · "));
      warn.hidden = false;
    } else warn.hidden = true;

    // palettes
    const pbox = $("palettes");
    pbox.replaceChildren();
    (r.palettes || []).forEach((p, i) => {
      const roles = p.roles || {};
      const roleOf = {};
      for (const [role, hex] of Object.entries(roles)) {
        const h = hex6(hex);
        if (h) (roleOf[h] = roleOf[h] || []).push(L.roles[role] || role);
      }
      const swatches = el("div", { class: "swatches" });
      for (const c of p.colors || []) {
        const h = hex6(c);
        if (!h) continue;
        swatches.append(el("div", { class: "swatch", "data-testid": "swatch", "data-hex": h, style: `background:${h};color:${inkOn(h)}` },
          el("span", { class: "sw-role" }, (roleOf[h] || []).join(" · ")),
          el("span", { class: "sw-hex" }, h)));
      }
      const bg = hex6(roles.background) || "#FFFFFF", fg = hex6(roles.text) || "#000000";
      const prim = hex6(roles.primary) || fg, acc = hex6(roles.accent) || prim;
      const contrast = Number(p.contrast);
      const grade = contrast >= 7 ? "AAA" : contrast >= 4.5 ? "AA" : "";
      const sample = el("div", { class: "pal-sample", style: `background:${bg};color:${fg}` },
        el("span", { class: "pal-sample-head", style: `color:${prim}` }, L.sample_heading(label("product", [...state.selected.product][0] || ""))),
        el("span", { class: "pal-sample-body" }, L.sample_body),
        el("span", { class: "pal-sample-pill", style: `background:${acc};color:${inkOn(acc)}` }, "NEW · 新品"));
      const name = state.lang === "zh" && p.name_zh ? p.name_zh : p.name;
      pbox.append(el("div", { class: "palette" + (i === 0 ? " top" : ""), "data-testid": "palette" },
        el("div", { class: "pal-head" },
          el("span", { class: "pal-name" }, `${i + 1}. ${name}`),
          el("span", { class: "pal-contrast" }, `${L.contrast} ${contrast.toFixed(1)} : 1 ${grade}`),
          scoreBar(p.score, "pal-score")),
        swatches, sample));
    });

    // styles
    const sbox = $("styles");
    sbox.replaceChildren();
    for (const s of r.styles || []) {
      const name = state.lang === "zh" && s.name_zh ? s.name_zh : capital(String(s.style).replace(/_/g, " "));
      sbox.append(el("div", { class: "style-row" }, el("span", { class: "style-name" }, name), scoreBar(s.score)));
    }

    // fonts
    const fbox = $("fonts");
    fbox.replaceChildren();
    const productName = label("product", [...state.selected.product][0] || "");
    for (const f of r.fonts || []) {
      const families = [...new Set([f.heading, f.body, f.heading_cjk, f.body_cjk])].filter(Boolean);
      const missing = families.filter((x) => !fontAvailable(x));
      const card = el("div", { class: "font-card", "data-testid": "font-card", "data-heading": f.heading || "",
        "data-heading-cjk": f.heading_cjk || "", "data-missing": missing.join(",") },
        el("div", { class: "font-head", style: `font-family:${fontStack(f.heading, f.heading_cjk)}` },
          state.lang === "zh" ? L.sample_heading(productName) : L.sample_heading(productName)),
        el("div", { class: "font-cjk", style: `font-family:${fontStack(f.heading_cjk, null)}` }, L.sample_cjk),
        el("div", { class: "font-body", style: `font-family:${fontStack(f.body, f.body_cjk)}` }, L.sample_body),
        el("div", { class: "font-meta" },
          el("span", {}, [f.heading, f.body].filter(Boolean).join(" + ")),
          f.heading_cjk ? el("span", {}, [f.heading_cjk, f.body_cjk].filter(Boolean).join(" + ")) : null,
          missing.length ? el("span", { class: "font-missing" }, `${L.font_missing}: ${missing.join(", ")}`) : null),
        scoreBar(f.score));
      fbox.append(card);
      // bundled faces load on first use; say so on the card once they have (tests wait for it)
      if (document.fonts) {
        const bundled = families.filter(isBundled);
        Promise.all(bundled.flatMap((fam) => ["400", "700"].map((w) => document.fonts.load(`${w} 40px "${fam}"`, "Aa清"))))
          .then(() => { card.dataset.fontsLoaded = "1"; }, () => { card.dataset.fontsLoaded = "error"; });
      }
    }

    renderMockup(r);
    // layout heatmaps
    renderLayout(r.layout, r.palettes && r.palettes[0]);
  }

  // The appliance's own mock-up of the top suggestion (`preview_png`), with the layout template
  // it follows; hidden when the reply has none.
  function renderMockup(r) {
    const card = $("mockup-card"), img = $("mockup");
    if (typeof r.preview_png !== "string" || !r.preview_png) {
      card.hidden = true;
      img.removeAttribute("src");
      return;
    }
    img.src = "data:image/png;base64," + r.preview_png;
    img.alt = t().mockup;
    const template = r.layout && typeof r.layout.template === "string" ? r.layout.template : "";
    $("mockup-caption").textContent = template ? `${t().template}: ${template}` : "";
    card.hidden = false;
  }

  // `understood`: each brief value, the vocabulary terms it was read as and how. Encoder readings
  // are guesses by meaning, so they are drawn apart (class "guess") with their similarity.
  function renderUnderstood(list) {
    const L = t();
    const box = $("understood");
    const entries = Array.isArray(list) ? list.filter((u) => u && typeof u === "object") : [];
    if (!entries.length) { box.hidden = true; box.replaceChildren(); return; }
    const rows = entries.map((u) => {
      const via = String(u.via || "");
      const sim = Number(u.similarity);
      const pct = via === "encoder" && u.similarity != null && Number.isFinite(sim) ? Math.round(sim * 100) : null;
      const how = via === "encoder" ? L.u_via.encoder(pct) : (L.u_via[via] || via);
      const terms = (Array.isArray(u.as) ? u.as : []).map((id) => {
        const { group, text } = termLabel(id);
        return el("span", { class: "u-term", "data-testid": "understood-term", "data-id": String(id) },
          group ? el("span", { class: "u-group" }, L.u_groups[group] || group) : null, text);
      });
      return el("li", { class: "u-row" + (via === "encoder" ? " guess" : ""), "data-testid": "understood-row",
        "data-field": String(u.field || ""), "data-via": via },
        el("span", { class: "u-field" }, L.u_fields[u.field] || String(u.field || "")),
        el("span", { class: "u-text", "data-testid": "understood-text" }, String(u.text == null ? "" : u.text)),
        el("span", { class: "u-arrow", "aria-hidden": "true" }, "→"),
        el("span", { class: "u-terms" }, ...terms),
        el("span", { class: "u-via", "data-testid": "understood-via" }, how));
    });
    box.replaceChildren(el("b", { class: "u-title" }, L.understood), el("ul", {}, ...rows));
    box.hidden = false;
  }

  function scoreBar(score, extra) {
    const v = Number(score);
    const pct = Math.max(0, Math.min(1, v)) * 100;
    return el("div", { class: "score " + (extra || ""), "data-testid": "score", "data-score": String(v) },
      el("div", { class: "score-track" }, el("div", { class: "score-fill", style: `width:${pct.toFixed(1)}%` })),
      el("span", { class: "score-num" }, v.toFixed(2)));
  }

  const HEAT = { logo: [124, 58, 237], product: [234, 88, 12], text: [2, 132, 199] };
  function renderLayout(layout, palette) {
    const box = $("layout");
    box.replaceChildren();
    if (!layout || !layout.heatmaps) return;
    const [rows, cols] = layout.grid || [16, 12];
    const bg = (palette && palette.roles && hex6(palette.roles.background)) || "#F4F1EA";
    for (const key of ["logo", "product", "text"]) {
      const map = layout.heatmaps[key] || [];
      const W = 300, H = Math.round((W * rows) / cols);
      const cv = el("canvas", { width: W * 2, height: H * 2, class: "heat", "data-testid": `heat-${key}` });
      const g = cv.getContext("2d");
      g.scale(2, 2);
      // the package front
      g.fillStyle = bg;
      roundRect(g, 0, 0, W, H, 14); g.fill();
      g.save(); roundRect(g, 0, 0, W, H, 14); g.clip();
      const cw = W / cols, ch = H / rows;
      const [R, G, B] = HEAT[key];
      for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) {
        const v = Math.max(0, Math.min(1, Number(map[y * cols + x]) || 0));
        if (v <= 0) continue;
        g.fillStyle = `rgba(${R},${G},${B},${(0.08 + 0.8 * v).toFixed(3)})`;
        g.fillRect(x * cw, y * ch, cw + 0.5, ch + 0.5);
      }
      // every zone as an outline; this map's own zone bold
      for (const z of ["logo", "product", "text"]) {
        const b = layout.zones && layout.zones[z];
        if (!b) continue;
        const own = z === key;
        g.setLineDash(own ? [] : [6, 5]);
        g.lineWidth = own ? 4 : 2;
        g.strokeStyle = own ? "#111" : "rgba(17,17,17,0.55)";
        g.strokeRect(b.x * W, b.y * H, b.w * W, b.h * H);
        if (own) {
          g.setLineDash([]);
          g.font = "600 16px system-ui, sans-serif";
          const text = t().heat[z];
          const tw = g.measureText(text).width + 12;
          const lx = Math.min(W - tw - 2, Math.max(2, b.x * W)), ly = Math.max(2, b.y * H - 26 < 0 ? b.y * H + 2 : b.y * H - 26);
          g.fillStyle = "#111"; g.fillRect(lx, ly, tw, 24);
          g.fillStyle = "#fff"; g.fillText(text, lx + 6, ly + 17);
        }
      }
      g.restore();
      g.lineWidth = 2; g.strokeStyle = "rgba(0,0,0,0.25)"; roundRect(g, 1, 1, W - 2, H - 2, 14); g.stroke();
      box.append(el("figure", { class: "heat-fig" }, cv,
        el("figcaption", {}, el("span", { class: "heat-dot", style: `background:rgb(${R},${G},${B})` }), t().heat[key])));
    }
  }
  function roundRect(g, x, y, w, h, r) {
    g.beginPath();
    g.moveTo(x + r, y); g.arcTo(x + w, y, x + w, y + h, r); g.arcTo(x + w, y + h, x, y + h, r);
    g.arcTo(x, y + h, x, y, r); g.arcTo(x, y, x + w, y, r); g.closePath();
  }

  // ---------------------------------------------------------------- start
  function reset() {
    for (const s of Object.values(state.selected)) s.clear();
    state.brandColors = [];
    clearPhoto();
    hideError();
    state.lastReply = null;
    $("result").hidden = true;
    renderBrandColors();
    renderChips();
    updateSend();
    window.scrollTo({ top: 0, behavior: motion() });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    for (const b of document.querySelectorAll(".lang-btn")) b.addEventListener("click", () => { state.lang = b.dataset.lang; applyText(); });
    $("send").addEventListener("click", send);
    $("reset").addEventListener("click", reset);
    $("add-color").addEventListener("click", () => {
      if (state.brandColors.length < 4) { state.brandColors.push(["#1A73E8", "#E53935", "#F9A825", "#2E7D32"][state.brandColors.length]); renderBrandColors(); }
    });
    $("photo-input").addEventListener("change", (e) => { const f = e.target.files && e.target.files[0]; if (f) takePhoto(f); });
    $("clear-photo").addEventListener("click", clearPhoto);
    $("camera-btn").addEventListener("click", openCamera);
    $("camera-btn").hidden = !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    if (!window.isSecureContext) {
      // no camera API here: browsers offer getUserMedia only on https or localhost (docs/kiosk.md)
      console.warn("packd kiosk: no camera on an insecure origin (" + location.origin + "); serve the page over https " +
        "or start Chromium with --unsafely-treat-insecure-origin-as-secure=" + location.origin);
    }
    $("camera-cancel").addEventListener("click", closeCamera);
    $("camera-shoot").addEventListener("click", shoot);
    try {
      state.terms = await (await fetch("terms.json", { cache: "no-cache" })).json();
    } catch (_) {
      state.terms = { rows: { product: [], audience: [], mood: [], occasion: [], palette: [] } };
    }
    renderBrandColors();
    applyText();
    connect();
    document.body.dataset.ready = "1";
  });

  // for tests and debugging
  window.kiosk = { cfg, session, replyTopic, briefTopic, state };
})();
