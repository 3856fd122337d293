// The explorer: pages drawn in the browser from this node's own /v1 API.
//
// A hash router picks the page (#/, #/blocks/H, #/txs/HASH, #/accounts/ADDRESS,
// #/search/TEXT); committed blocks arrive over the /v1/events websocket, and
// the network page keeps the last RECENT of them to show the block rate and
// which validators' precommits are in the recent commit certificates. Every
// value from the node is put in the page as text, never as markup, so a memo
// cannot inject anything. Amounts are shown from the API's *_som strings:
// tyiyn counts can exceed what a JavaScript number holds exactly.
"use strict";

const RECENT = 20;
const LATEST_ROWS = 12;
const STATUS_EVERY_MS = 2000;
const RECONNECT_MS = 2000;
const TXS_PER_PAGE = 50;

const RESULTS = {
  ok: ["ok", "Applied", "The ledger applied the transaction."],
  insufficient_funds: ["warn", "Insufficient funds", "The balance did not cover the amount; nothing moved and the nonce was used."],
  unauthorised: ["warn", "Unauthorised", "The sender may not do this (issue is for the issuer; redeem for banks and the issuer); the nonce was used."],
  overflow: ["warn", "Overflow", "Issuing this amount would take the supply past its limit; the nonce was used."],
  self_transfer: ["warn", "Self-transfer", "Sender and recipient are the same account; the nonce was used."],
  bad_nonce: ["bad", "Bad nonce", "The nonce was not the account's next one when the block was applied; nothing changed."],
  unknown_account: ["bad", "Unknown account", "The sender had no account; nothing changed."],
  over_payment_limit: ["warn", "Over the payment limit", "The amount is over the sender's tier's limit for one payment; the nonce was used."],
  over_daily_limit: ["warn", "Over the daily limit", "The sender's payments of the Bishkek day would exceed its tier's daily limit; the nonce was used."],
  over_holding_limit: ["warn", "Over the holding limit", "The recipient would exceed its maximum balance and has no linked account that can take the rest; the nonce was used."],
  sender_frozen: ["warn", "Sender frozen", "A legal order froze the sender's outgoing payments; the nonce was used."],
  recipient_frozen: ["warn", "Recipient frozen", "A legal order froze the recipient's incoming payments; the nonce was used."],
  not_registering_bank: ["warn", "Not the registering bank", "Another bank, or the board, registered this wallet; the nonce was used."],
  unknown_tier: ["warn", "Unknown tier", "No such wallet tier is defined."],
};
const KINDS = {
  transfer: "Transfer", issue: "Issue (new som from the National Bank)", redeem: "Redeem (som withdrawn from circulation)",
  governance: "Governance (an action of the National Bank's board)", register: "Wallet registration (by a bank)",
};

const state = {
  status: null,
  blocks: new Map(),        // height -> block document, the newest RECENT
  newest: 0,                // highest height drawn in the latest blocks table
  fresh: new Set(),         // heights that arrived live since the last draw
  live: false,
  renderId: 0,
};

// ---- small DOM helpers: text only, never HTML

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Like replaceChildren, but a left-out part (null, undefined, false) is left out, not written as text.
function put(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

function link(href, ...children) { return el("a", { href }, ...children); }
function mono(text, title) { return el("span", { class: "mono", title: title || text }, text); }
function short(hex, head = 10, tail = 8) { return hex.length <= head + tail + 1 ? hex : `${hex.slice(0, head)}…${hex.slice(-tail)}`; }
function badge(kind, text) { return el("span", { class: `badge ${kind}` }, text); }
function count(n) { return Number(n).toLocaleString("en-US"); }

function som(text) {
  const [whole, cents] = String(text).split(".");
  return `${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents || "00"} som`;
}

function fields(rows) {
  return el("table", { class: "fields" }, el("tbody", {}, rows.filter(Boolean).map(
    ([name, label, value, cls]) => el("tr", { "data-field": name }, el("th", { scope: "row" }, label), el("td", { class: cls }, value)))));
}

function card(title, note, ...body) {
  return el("section", { class: "card" }, el("div", { class: "card-head" }, el("h2", {}, title), note ? el("span", { class: "muted" }, note) : null), ...body);
}

function notice(kind, title, text, id) {
  return el("div", { class: `notice ${kind}`, id: id || "notice", role: kind === "bad" ? "alert" : "status" }, el("h2", {}, title), el("p", {}, text));
}

const BISHKEK = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Asia/Bishkek", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

function when(ms) {
  const p = Object.fromEntries(BISHKEK.formatToParts(new Date(ms)).map((part) => [part.type, part.value]));
  return { day: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}:${p.second}` };
}

function fullTime(ms) { const t = when(ms); return `${t.day} ${t.time} Bishkek time (UTC+6)`; }

// ---- the node's API

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the node did not answer (${error.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
  }
  return body;
}

// A validator the board added after the genesis has no name there: it goes by its address.
function validators() {
  return ((state.status && state.status.validators) || []).map(
    (v) => (v.name ? v : { ...v, name: `validator ${short(v.address, 8, 4)}` }));
}
function validatorByAddress(address) { return validators().find((v) => v.address === address); }

// An address as a link to its account page, shortened unless ``full``, after the validator's name if it has one.
function accountLink(address, { full = false, named = true } = {}) {
  const validator = named && validatorByAddress(address);
  return link(`#/accounts/${address}`, validator ? `${validator.name} · ` : "", mono(full ? address : short(address, 12, 6), address));
}

// ---- live data: status polling and the block event stream

async function refreshStatus(fill = !state.live) {
  try {
    const status = await api("/v1/status");
    state.status = status;
    document.getElementById("chain-id").textContent = status.chain_id;
    document.getElementById("chain-height").textContent = count(status.height);
    const node = document.getElementById("node-id");
    node.replaceChildren(link(`#/accounts/${status.node_id}`, mono(short(status.node_id, 12, 6), status.node_id)));
    if (fill) await fillBlocks(status.height);
  } catch (error) {
    setLive("down", "Node unreachable");
  }
  redrawNetwork();
}

async function fillBlocks(height) {
  const known = state.blocks.size ? Math.max(...state.blocks.keys()) : 0;
  const from = Math.max(1, known + 1, height - RECENT + 1);
  const wanted = [];
  for (let h = from; h <= height; h += 1) wanted.push(h);
  const found = await Promise.all(wanted.map((h) => api(`/v1/blocks/${h}`).catch(() => null)));
  for (const block of found) if (block) keepBlock(block);
}

function keepBlock(block) {
  state.blocks.set(block.height, block);
  const heights = [...state.blocks.keys()].sort((a, b) => b - a);
  for (const h of heights.slice(RECENT)) state.blocks.delete(h);
}

function setLive(kind, text) {
  const node = document.getElementById("live-status");
  node.dataset.state = kind;
  node.textContent = text;
}

function connectEvents() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/events`);
  socket.addEventListener("open", async () => {
    state.live = true;
    setLive("live", "Live");
    await refreshStatus(true); // fill in what was committed while disconnected
  });
  socket.addEventListener("message", async (event) => {
    const message = JSON.parse(event.data);
    if (message.type !== "block") return;
    const block = message.block;
    if (state.blocks.size && !state.blocks.has(block.height - 1)) await fillBlocks(block.height - 1);
    keepBlock(block);
    state.fresh.add(block.height);
    document.getElementById("live-status").dataset.lastHeight = block.height; // what the stream delivered last
    if (state.status && block.height > state.status.height) {
      state.status.height = block.height;
      state.status.consensus_height = Math.max(state.status.consensus_height, block.height + 1);
      state.status.committed_txs += block.tx_count;
      document.getElementById("chain-height").textContent = count(block.height);
    }
    redrawNetwork();
  });
  socket.addEventListener("close", () => {
    state.live = false;
    setLive("down", "Reconnecting…");
    setTimeout(connectEvents, RECONNECT_MS);
  });
}

// ---- router

const PAGES = [
  [/^#?\/?$/, networkPage],
  [/^#\/blocks\/([^/]+)$/, blockPage],
  [/^#\/txs\/([^/]+)$/, txPage],
  [/^#\/accounts\/([^/]+)$/, accountPage],
  [/^#\/search\/(.*)$/, searchPage],
];

async function render() {
  const id = ++state.renderId;
  const view = document.getElementById("view");
  for (const [pattern, page] of PAGES) {
    const match = location.hash.match(pattern);
    if (!match) continue;
    const arg = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
    view.dataset.page = page.name.replace(/Page$/, "");
    view.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    let content;
    try {
      content = await page(arg);
    } catch (error) {
      content = [notice("bad", "The node refused the request", `${error.message}`, "error")];
    }
    if (id === state.renderId) put(view, content);
    if (id === state.renderId && page === networkPage) redrawNetwork();
    return;
  }
  view.dataset.page = "missing";
  view.replaceChildren(notice("warn", "No such page", "Use the search box, or go back to the network overview."));
}

function searchTarget(text) {
  const query = text.trim();
  if (/^som1/i.test(query)) return `#/accounts/${query}`;
  if (/^[0-9a-f]{64}$/i.test(query)) return `#/txs/${query.toLowerCase()}`;
  if (/^[0-9]{1,19}$/.test(query) && Number(query) > 0) return `#/blocks/${Number(query)}`;
  return `#/search/${encodeURIComponent(query)}`;
}

// ---- pages

async function networkPage() {
  return [
    el("h1", {}, "Network"),
    el("p", { class: "subtitle" }, "The validators' agreement on the digital som ledger, as this node sees it."),
    el("div", { id: "figures", class: "figures" }),
    el("div", { id: "validators-card" }),
    el("div", { class: "columns" }, el("div", { id: "latest-card" }), el("div", { id: "node-card" })),
  ];
}

function redrawNetwork() {
  const status = state.status;
  if (!status || !document.getElementById("figures")) return;
  const recent = [...state.blocks.values()].sort((a, b) => a.height - b.height);
  document.getElementById("figures").replaceChildren(...figures(status, recent));
  document.getElementById("validators-card").replaceChildren(validatorsCard(status, recent));
  document.getElementById("latest-card").replaceChildren(latestCard(recent));
  document.getElementById("node-card").replaceChildren(nodeCard(status));
  state.fresh.clear();
}

function figure(id, label, value, note) {
  return el("div", { class: "figure", id }, el("div", { class: "figure-label" }, label),
    el("div", { class: "figure-value" }, value), el("div", { class: "figure-note" }, note || " "));
}

function rates(recent) {
  if (recent.length < 2) return null;
  const first = recent[0];
  const last = recent[recent.length - 1];
  const seconds = (last.time_ms - first.time_ms) / 1000;
  if (seconds <= 0) return null;
  const txs = recent.slice(1).reduce((sum, b) => sum + b.tx_count, 0);
  return { blocks: (recent.length - 1) / seconds, txs: txs / seconds, interval: (seconds * 1000) / (recent.length - 1) };
}

function figures(status, recent) {
  const rate = rates(recent);
  const others = validators().length - 1;
  return [
    figure("figure-height", "Height", count(status.height), `deciding ${count(status.consensus_height)} · round ${status.round}`),
    figure("figure-rate", "Block rate", rate ? `${rate.blocks.toFixed(1)} /s` : "—",
      rate ? `one every ${Math.round(rate.interval)} ms` : "waiting for blocks"),
    figure("figure-txs", "Transactions", count(status.committed_txs), rate ? `${rate.txs.toFixed(1)} /s recently` : "committed"),
    figure("figure-peers", "Peers", `${status.peers.length} of ${others}`, "validators connected"),
    figure("figure-mempool", "Mempool", count(status.mempool_size), "transactions pending"),
    figure("figure-supply", "Supply", som(status.supply_som), "in circulation"),
  ];
}

// Strictly more than two thirds of the power, as consensus counts it.
function quorumOf(total) { return Math.floor((2 * total) / 3) + 1; }

function validatorsCard(status, recent) {
  const total = validators().reduce((sum, v) => sum + v.power, 0);
  const quorum = quorumOf(total);
  const rows = validators().map((v) => {
    const signed = recent.map((b) => b.commit.precommits.some((p) => p.validator === v.address));
    const n = signed.filter(Boolean).length;
    const connection = v.address === status.node_id ? badge("plain", "this node")
      : status.peers.includes(v.address) ? badge("ok", "connected") : badge("bad", "not connected");
    const signing = !recent.length ? badge("plain", "no blocks yet")
      : n ? badge("ok", "signing") : badge("bad", "not signing");
    return el("tr", { "data-validator": v.address },
      el("td", {}, el("strong", {}, v.name), el("br"), link(`#/accounts/${v.address}`, mono(short(v.address, 14, 6), v.address))),
      el("td", { class: "num right" }, count(v.power)),
      el("td", {}, connection),
      el("td", { class: "signed" },
        el("span", { class: "strip", "aria-hidden": "true" }, signed.map((on) => el("i", { class: on ? "on" : "" }))),
        el("span", { class: "num signed-count" }, `${n} of ${recent.length}`)),
      el("td", {}, signing));
  });
  return card("Validators", `${validators().length} validators · total power ${count(total)} · a commit needs ${count(quorum)}`,
    el("table", { id: "validators" },
      el("thead", {}, el("tr", {}, el("th", {}, "Validator"), el("th", { class: "right" }, "Power"), el("th", {}, "Connection"),
        el("th", {}, `In the last ${recent.length || RECENT} certificates`), el("th", {}, "Status"))),
      el("tbody", {}, rows)));
}

function latestCard(recent) {
  const newest = recent.slice(-LATEST_ROWS).reverse();
  const rows = newest.map((b) => {
    const proposer = validatorByAddress(b.proposer);
    return el("tr", { "data-height": b.height, class: state.fresh.has(b.height) ? "fresh" : null },
      el("td", {}, link(`#/blocks/${b.height}`, count(b.height))),
      el("td", { class: "num", title: fullTime(b.time_ms) }, when(b.time_ms).time),
      el("td", { class: "num right" }, count(b.tx_count)),
      el("td", {}, proposer ? proposer.name : mono(short(b.proposer, 10, 4), b.proposer)),
      el("td", { class: "num right" }, b.commit.precommits.length));
  });
  return card("Latest blocks", state.live ? "arriving live" : "refreshed every few seconds",
    rows.length ? el("table", { id: "latest-blocks" },
      el("thead", {}, el("tr", {}, el("th", {}, "Height"), el("th", {}, "Time (Bishkek)"), el("th", { class: "right" }, "Txs"),
        el("th", {}, "Proposer"), el("th", { class: "right" }, "Signatures"))),
      el("tbody", {}, rows)) : el("p", { class: "empty" }, "No block has been committed yet."));
}

function nodeCard(status) {
  return card("This node", null, fields([
    ["node", "Validator", (validatorByAddress(status.node_id) || {}).name || "not in the validator set"],
    ["address", "Address", accountLink(status.node_id, { named: false })],
    ["chain", "Chain id", status.chain_id],
    ["app-hash", "App hash", mono(short(status.app_hash, 16, 16), status.app_hash)],
    ["evidence", "Equivocations seen", status.evidence.length ? badge("bad", count(status.evidence.length)) : "none"],
  ]));
}

async function blockPage(arg) {
  if (!/^[0-9]{1,19}$/.test(arg) || Number(arg) < 1) {
    return notice("warn", "Not a block height", `“${arg}” is not a block height: heights are whole numbers from 1.`);
  }
  const height = Number(arg);
  let block;
  try {
    block = await api(`/v1/blocks/${height}`);
  } catch (error) {
    if (error.code !== "block_not_found") throw error;
    const latest = state.status ? ` The latest committed block is ${count(state.status.height)}.` : "";
    return notice("warn", `Block ${count(height)} is not committed yet`, `This node has no block at height ${count(height)}.${latest}`);
  }
  const total = validators().reduce((sum, v) => sum + v.power, 0);
  const signedPower = block.commit.precommits.reduce((sum, p) => sum + ((validatorByAddress(p.validator) || {}).power || 0), 0);
  const nav = el("span", { class: "crumbs" },
    height > 1 ? link(`#/blocks/${height - 1}`, "← previous") : "", height > 1 ? " · " : "",
    link(`#/blocks/${height + 1}`, "next →"));
  return [
    el("div", { class: "crumbs" }, link("#/", "Network"), " / Block"),
    el("h1", {}, `Block ${count(height)}`), el("p", { class: "subtitle" }, nav),
    card("Header", null, fields([
      ["height", "Height", count(block.height)],
      ["time", "Time", fullTime(block.time_ms)],
      ["hash", "Block hash", mono(block.hash)],
      ["proposer", "Proposer", accountLink(block.proposer, { full: true })],
      ["previous", height > 1 ? "Previous block" : "Genesis hash", height > 1 ? link(`#/blocks/${height - 1}`, mono(block.previous_block_hash)) : mono(block.previous_block_hash)],
      ["previous-app-hash", "App hash before", mono(block.previous_app_hash)],
      ["app-hash", "App hash after", mono(block.app_hash)],
      ["previous-results-hash", "Results root of the block before", mono(block.previous_results_hash)],
      ["results-hash", "Results root of this block", mono(block.results_hash)],
      ["next-validators-hash", "Next height's validator set", mono(block.next_validators_hash)],
      ["tx-root", "Transaction root", mono(block.tx_root)],
      ["tx-count", "Transactions", count(block.tx_count)],
    ])),
    card("Commit certificate", `round ${block.commit.round} · signed by ${block.commit.precommits.length} of ` +
      `${validators().length} validators, power ${count(signedPower)} of ${count(total)} (a commit needs ${count(quorumOf(total))})`,
      el("table", { id: "precommits" },
        el("thead", {}, el("tr", {}, el("th", {}, "Validator"), el("th", { class: "right" }, "Power"), el("th", {}, "Signature over the block hash"))),
        el("tbody", {}, block.commit.precommits.map((p) => {
          const v = validatorByAddress(p.validator);
          return el("tr", { "data-validator": p.validator },
            el("td", {}, v ? el("strong", {}, v.name) : "", v ? el("br") : "", accountLink(p.validator, { named: false })),
            el("td", { class: "num right" }, v ? count(v.power) : "?"),
            el("td", {}, mono(short(p.signature, 24, 24), p.signature)));
        })))),
    txList(block),
  ];
}

function txList(block) {
  const body = el("div", {});
  const pages = Math.max(1, Math.ceil(block.txs.length / TXS_PER_PAGE));
  const show = (page) => {
    const first = page * TXS_PER_PAGE;
    const rows = block.txs.slice(first, first + TXS_PER_PAGE).map((hash, i) =>
      el("tr", {}, el("td", { class: "num" }, first + i), el("td", {}, link(`#/txs/${hash}`, mono(hash)))));
    put(body,
      rows.length ? el("table", { id: "block-txs" }, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "Transaction hash"))), el("tbody", {}, rows))
        : el("p", { class: "empty" }, "An empty block: validators commit one now and then to show the network is alive."),
      pages > 1 ? el("div", { class: "pager" },
        el("button", { type: "button", disabled: page === 0, onclick: () => show(page - 1) }, "Previous"),
        `page ${page + 1} of ${pages}`,
        el("button", { type: "button", disabled: page + 1 >= pages, onclick: () => show(page + 1) }, "Next")) : null);
  };
  show(0);
  return card("Transactions", `${count(block.tx_count)} in this block`, body);
}

async function txPage(arg) {
  const hash = arg.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    return notice("warn", "Not a transaction hash", "A transaction hash is 64 hexadecimal digits.");
  }
  const found = await api(`/v1/txs/${hash}`);
  const head = [el("div", { class: "crumbs" }, link("#/", "Network"), " / Transaction"), el("h1", {}, "Transaction"),
    el("p", { class: "subtitle" }, mono(hash))];
  if (found.status === "unknown") {
    return [...head, notice("bad", "Unknown transaction",
      "This node knows no transaction with this hash: it is neither waiting in the mempool nor in a committed block. " +
      "Check the hash for typos. A transaction dropped from the mempool (its nonce was used, or funds ran out) " +
      "also shows as unknown. Blocks are found by their height, not their hash.", "unknown-tx")];
  }
  const tx = found.tx;
  let statusCell;
  let receipt = null;
  if (found.status === "pending") {
    statusCell = badge("info", "pending");
  } else {
    const [kind, label, explanation] = RESULTS[found.result] || ["plain", found.result, ""];
    statusCell = [badge(found.result === "ok" ? "ok" : kind, found.result === "ok" ? "committed" : `committed: ${label.toLowerCase()}`)];
    const block = await api(`/v1/blocks/${found.height}`).catch(() => null);
    receipt = card("Receipt", null, fields([
      ["result", "Result", [badge(kind, label), " ", explanation]],
      ["block", "Block", link(`#/blocks/${found.height}`, count(found.height))],
      ["index", "Position in block", count(found.index)],
      block ? ["time", "Committed at", fullTime(block.time_ms)] : null,
    ]));
  }
  const details = fields([["status", "Status", statusCell], ...(tx ? txRows(tx) : []),
    ...(found.waterfall ? [["waterfall", "Waterfall", [som(found.waterfall.credited_som), " credited; ",
      som(found.waterfall.passed_on_som), " passed on to the linked account ",
      accountLink(found.waterfall.linked_account, { full: true })]]] : [])]);
  if (found.status === "pending") {
    head.push(notice("info", "Waiting to be committed", "The transaction is in this node's mempool; it is final once a block holding it is committed.", "pending-tx"));
  }
  return [...head, card("Details", null, details), receipt];
}

// A transaction's own fields, by kind.
function txRows(tx) {
  const kind = ["kind", "Kind", KINDS[tx.kind] || tx.kind];
  if (tx.kind === "governance") {
    return [kind, ["action", "Action", tx.action.description, "text"], ["sequence", "Board sequence", count(tx.sequence)],
      ["approvals", "Approved by", tx.approvals.map((a, i) => [i ? ", " : "", accountLink(a)])]];
  }
  if (tx.kind === "register") {
    return [kind, ["bank", "Bank", accountLink(tx.bank, { full: true })], ["wallet", "Wallet", accountLink(tx.wallet, { full: true })],
      ["tier", "Tier", count(tx.tier)],
      ["linked", "Linked account", tx.linked_account ? accountLink(tx.linked_account, { full: true }) : el("span", { class: "muted" }, "none")]];
  }
  return [kind,
    ["amount", "Amount", el("span", { class: "amount" }, som(tx.amount_som))],
    ["sender", "From", accountLink(tx.sender, { full: true })],
    ["recipient", "To", tx.recipient ? accountLink(tx.recipient, { full: true }) : el("span", { class: "muted" }, "none: the som are withdrawn")],
    ["memo", "Memo", tx.memo ? tx.memo : el("span", { class: "muted" }, "none"), "text"],
    ["nonce", "Sender's nonce", count(tx.nonce)]];
}

// What the account page shows, in order; a field the API does not send is left out,
// so a new field (tier, limits, orders) needs one line here once the API has it.
const ACCOUNT_FIELDS = [
  ["balance", "Balance", (a) => el("span", { class: "amount" }, som(a.balance_som))],
  ["nonce", "Transactions sent", (a) => count(a.nonce)],
  ["pending_nonce", "Next nonce", (a) => [count(a.pending_nonce), a.pending_nonce > a.nonce
    ? el("span", { class: "muted" }, ` (${a.pending_nonce - a.nonce} pending)`) : ""]],
  ["tier", "Tier", (a) => (a.tier_name ? `${a.tier} · ${a.tier_name}` : count(a.tier))],
  ["limits", "Limits", (a) => (a.limits ? [som(a.limits.daily_out_left_som), " left to send today; room for ",
    som(a.limits.balance_room_som), " more"] : el("span", { class: "muted" }, "none"))],
  ["frozen", "Frozen", (a) => (a.frozen.outgoing || a.frozen.incoming
    ? badge("warn", a.frozen.outgoing && a.frozen.incoming ? "all payments" : a.frozen.outgoing ? "outgoing payments" : "incoming payments")
    : el("span", { class: "muted" }, "no"))],
  ["registering_bank", "Registered by", (a) => (a.registering_bank ? accountLink(a.registering_bank)
    : el("span", { class: "muted" }, a.registered_by_board ? "the board" : "no bank"))],
  ["linked_account", "Linked account", (a) => (a.linked_account ? accountLink(a.linked_account) : el("span", { class: "muted" }, "none"))],
];

const ORDER_WORDS = { freeze: "Freeze", unfreeze: "Unfreeze", seize: "Seizure" };

function ordersCard(orders) {
  if (!orders.length) return null;
  const rows = orders.map((o) => el("tr", {},
    el("td", {}, link(`#/blocks/${o.height}`, count(o.height))),
    el("td", {}, ORDER_WORDS[o.order] || o.order),
    el("td", {}, o.order === "seize" ? [som(o.amount_som), " to ", accountLink(o.destination)] : `${o.scope} payments`),
    el("td", {}, `${o.reference.authority}, no. ${o.reference.number}, ${o.reference.date}`),
    el("td", {}, mono(short(o.reference.document_sha256, 10, 6), o.reference.document_sha256))));
  return card("Legal orders", "oldest first", el("table", { id: "orders" },
    el("thead", {}, el("tr", {}, ["Block", "Order", "What", "Reference", "Document SHA-256"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)));
}

async function accountPage(address) {
  const head = [el("div", { class: "crumbs" }, link("#/", "Network"), " / Account")];
  let account;
  try {
    account = await api(`/v1/accounts/${encodeURIComponent(address)}`);
  } catch (error) {
    if (error.code !== "bad_address") throw error;
    return [...head, el("h1", {}, "Account"), notice("bad", "Not a valid address", error.message, "bad-address")];
  }
  const validator = validatorByAddress(account.address);
  const rows = ACCOUNT_FIELDS.filter(([key]) => key in account).map(([key, label, show]) => [key, label, show(account)]);
  const quiet = account.balance === 0 && account.nonce === 0 && account.pending_nonce === 0;
  return [
    ...head,
    el("h1", {}, "Account ", validator ? badge("info", `validator ${validator.name}`) : ""),
    el("p", { class: "subtitle" }, mono(account.address)),
    quiet ? notice("info", "No activity yet", "This account has never held som and has sent nothing.", "quiet-account") : null,
    card("Balance and nonce", "committed state", fields(rows)),
    ordersCard((await api(`/v1/accounts/${encodeURIComponent(address)}/orders`).catch(() => ({ orders: [] }))).orders),
  ];
}

async function searchPage(text) {
  return [
    el("h1", {}, "Search"),
    notice("warn", "Nothing to look up", `“${text}” is not an address, a transaction hash or a block height. ` +
      "Enter an address (som1…), a transaction hash (64 hexadecimal digits) or a block height (a whole number).", "search-help"),
  ];
}

// ---- start

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("search-input");
  if (!input.value.trim()) return;
  const target = searchTarget(input.value);
  input.value = "";
  input.blur();
  if (location.hash === target) render();
  else location.hash = target;
});
window.addEventListener("hashchange", render);
refreshStatus().then(render);
connectEvents();
setInterval(() => refreshStatus(), STATUS_EVERY_MS);
