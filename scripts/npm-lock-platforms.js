#!/usr/bin/env node
// Make package-lock.json list every platform package of @foundry-rs/anvil.
//
// anvil ships its native binary in per-platform optional packages
// (@foundry-rs/anvil-<os>-<arch>). The npm registry mirror reachable here serves only
// the linux-amd64 one, so `npm install` writes a lock without the others, and `npm ci`
// then refuses the lock ("Missing: @foundry-rs/anvil-darwin-arm64@ from lock file").
// This script adds the missing entries (version, os, cpu, optional) so `npm ci` accepts
// the lock on every platform; npm skips the entries that do not match the machine.
//
// Run it after any `npm install` that touches the lock:  node scripts/npm-lock-platforms.js
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const LOCK = path.join(__dirname, "..", "package-lock.json");
const OS = { darwin: "darwin", linux: "linux", win32: "win32" };
const CPU = { amd64: "x64", arm64: "arm64" };

const lock = JSON.parse(fs.readFileSync(LOCK, "utf8"));
const pkgs = lock.packages;
let added = 0;
for (const [key, meta] of Object.entries(pkgs)) {
  if (!/^node_modules\/@foundry-rs\/[a-z]+$/.test(key)) continue;
  const tool = key.split("/").pop();
  for (const [dep, version] of Object.entries(meta.optionalDependencies || {})) {
    const entry = `node_modules/${dep}`;
    if (pkgs[entry]) continue;
    const m = dep.match(new RegExp(`^@foundry-rs/${tool}-([a-z0-9]+)-([a-z0-9]+)$`));
    if (!m || !OS[m[1]] || !CPU[m[2]]) throw new Error(`cannot infer os/cpu of ${dep}`);
    pkgs[entry] = {
      version,
      cpu: [CPU[m[2]]],
      dev: meta.dev || undefined,
      license: meta.license,
      optional: true,
      os: [OS[m[1]]],
      bin: { [tool]: `bin/${tool}${m[1] === "win32" ? ".exe" : ""}` },
    };
    added++;
  }
}
const sorted = {};
for (const k of Object.keys(pkgs).sort((a, b) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0))) {
  sorted[k] = pkgs[k];
}
lock.packages = sorted;
fs.writeFileSync(LOCK, JSON.stringify(lock, null, 2) + "\n");
console.log(`package-lock.json: added ${added} platform entr${added === 1 ? "y" : "ies"}`);
