// mem.js: Node.js memory workloads for oomsim, the ways a Node service's
// memory outgrows its pod while --max-old-space-size "fits":
//   heap     JS objects kept reachable     -> V8's "JavaScript heap out of
//            memory" (SIGABRT, exit 134) when the old space cap is below them
//   buffers  Buffer.alloc kept reachable   -> outside the V8 heap, uncapped
//            by --max-old-space-size: the cgroup's OOM kill
//   burst    live objects plus short-lived garbage at a rate (GC churn: the
//            heap swings above what is live between collections)
// Usage: node mem.js heap --live SIZE | buffers --size SIZE
//                    | burst --live SIZE [--garbage SIZE] --duration DUR
//                    [--rate SIZE] [--chunk SIZE] [--hold DUR]
// Sizes: 512Mi, 64Ki, 1Gi or bytes; durations: 500ms, 2s, 1m or seconds.
// V8's own heap OOM is never caught: it aborts the process itself.
'use strict';

const usage = () => {
  console.error('usage: node mem.js heap --live SIZE | buffers --size SIZE | burst --live SIZE [--garbage SIZE] --duration DUR  [--rate SIZE] [--chunk SIZE] [--hold DUR]');
  process.exit(2);
};

const size = (s) => {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(s || '');
  if (!m) usage();
  return Number(m[1]) * { undefined: 1, Ki: 1 << 10, Mi: 1 << 20, Gi: 1 << 30 }[m[2]];
};

const millis = (s) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s || '');
  if (!m) usage();
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000, undefined: 1000 }[m[2]];
};

const [mode, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith('--') || rest[i + 1] === undefined) usage();
  opts[rest[i].slice(2)] = rest[i + 1];
}
const known = { heap: ['live'], buffers: ['size'], burst: ['live', 'garbage', 'duration'] }[mode];
if (!known) usage();
for (const k of Object.keys(opts)) if (![...known, 'rate', 'chunk', 'hold'].includes(k)) usage();
if (opts[known[0]] === undefined || (mode === 'burst' && opts.duration === undefined)) usage();

const target = size(opts[known[0]]);
const chunk = opts.chunk ? size(opts.chunk) : 1 << 20;
const rate = opts.rate ? size(opts.rate) : 0;
const hold = opts.hold ? millis(opts.hold) : 0;
const garbage = opts.garbage ? size(opts.garbage) : 0;
const duration = opts.duration ? millis(opts.duration) : 0;
if (chunk <= 0) usage();
const keep = [];
let have = 0;
let made = 0;
let lastPrint = 0;
let sink;

const mib = (b) => Math.round(b / 1048576);
const progress = (force) => {
  const now = Date.now();
  if (!force && now - lastPrint < 250) return;
  lastPrint = now;
  const m = process.memoryUsage();
  const what = mode === 'buffers' ? 'buffers' : 'live';
  const churn = mode === 'burst' ? `, garbage ${mib(made)} MiB` : '';
  console.log(`${what} ${mib(have)} MiB${churn}, heapUsed ${mib(m.heapUsed)} MiB, arrayBuffers ${mib(m.arrayBuffers)} MiB, rss ${mib(m.rss)} MiB`);
};

// `bytes` of V8 heap as small objects: each {n, s} with its own string and
// its array slot is about 80 bytes on 64-bit Node.
const objects = (bytes) => {
  const a = [];
  for (let n = 0; n < bytes / 80; n++) a.push({ n, s: 'x' + n });
  return a;
};

// One chunk kept: heap and burst keep objects, buffers keeps a filled
// Buffer (memory outside the V8 heap, every page written).
const grow = () => {
  keep.push(mode === 'buffers' ? Buffer.alloc(chunk, 1) : objects(chunk));
  have += chunk;
  progress(have >= target);
};

const finish = () => {
  if (hold > 0) console.log(`holding for ${hold} ms`);
  setTimeout(() => console.log('done'), hold);
};

// Garbage for `duration`: objects made and dropped at once, at `garbage`
// bytes per second (0: as fast as possible), yielding to the event loop.
const churn = () => {
  const start = Date.now();
  const step = () => {
    const slice = Date.now() + 50;
    while (Date.now() < slice && Date.now() - start < duration) {
      if (garbage > 0 && made > (garbage * (Date.now() - start)) / 1000) break;
      sink = objects(chunk);
      made += chunk;
      progress(false);
    }
    if (Date.now() - start < duration) setTimeout(step, 5);
    else { progress(true); finish(); }
  };
  step();
};

const grown = () => (mode === 'burst' ? churn() : finish());

if (rate === 0) {
  while (have < target) grow();
  grown();
} else {
  // Timers between chunks: the process stays responsive, as a server is.
  const start = Date.now();
  const step = () => {
    while (have < target && have <= (rate * (Date.now() - start)) / 1000) grow();
    if (have < target) setTimeout(step, 10);
    else grown();
  };
  step();
}
