// oomsim's Node.js preload (NODE_OPTIONS=--require=...): where the process's
// memory goes, from process.memoryUsage() and /proc/self/status, every
// 100 ms as one JSON line to the file named by OOMSIM_RUNTIME_STATS.
// The timer is unref'd: it never keeps the program alive.
'use strict';
const fs = require('fs');
const path = process.env.OOMSIM_RUNTIME_STATS;
if (path) {
  const fd = fs.openSync(path, 'a');
  const rssAnon = () => {
    const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  const sample = () => {
    const u = process.memoryUsage();
    const external = Math.max(0, u.external - u.arrayBuffers);
    // Stacking order: V8 heap, array buffers (Buffers), other external, native rest.
    const native = Math.max(0, rssAnon() - u.heapTotal - u.external);
    const line = { t_ns: String(process.hrtime.bigint()), bytes: [u.heapTotal, u.arrayBuffers, external, native] };
    fs.writeSync(fd, JSON.stringify(line).replace(/"t_ns":"(\d+)"/, '"t_ns":$1') + '\n');
  };
  sample();
  setInterval(sample, 100).unref();
}
