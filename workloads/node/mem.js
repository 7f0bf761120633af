// mem.js: Node.js memory workloads for oomsim, the ways a Node service's
// memory outgrows its pod while --max-old-space-size "fits":
//   heap     JS objects kept reachable     -> V8's "JavaScript heap out of
//            memory" (exit 134) when the old space cap is below them
//   buffers  Buffer.alloc kept reachable   -> outside the V8 heap, uncapped
//            by --max-old-space-size: the cgroup's OOM kill
// Usage: node mem.js heap --live SIZE | buffers --size SIZE  [--rate SIZE] [--chunk SIZE] [--hold DUR]
// Sizes: 512Mi, 64Ki, 1Gi or bytes; durations: 500ms, 2s, 1m or seconds.
'use strict';

const usage = () => {
  console.error('usage: node mem.js heap --live SIZE | buffers --size SIZE  [--rate SIZE] [--chunk SIZE] [--hold DUR]');
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
const known = { heap: ['live'], buffers: ['size'] }[mode];
if (!known) usage();
for (const k of Object.keys(opts)) if (![...known, 'rate', 'chunk', 'hold'].includes(k)) usage();

const target = size(opts[known[0]]);
const chunk = opts.chunk ? size(opts.chunk) : 1 << 20;
const rate = opts.rate ? size(opts.rate) : 0;
const hold = opts.hold ? millis(opts.hold) : 0;
const keep = [];
let have = 0;
let lastPrint = 0;

// One chunk: heap mode keeps small objects (each a few dozen bytes of V8
// heap), buffers mode keeps a filled Buffer (memory outside the V8 heap).
const grow = () => {
  if (mode === 'heap') {
    const objects = [];
    for (let n = 0; n < chunk / 64; n++) objects.push({ n, s: 'x' + n });
    keep.push(objects);
  } else {
    keep.push(Buffer.alloc(chunk, 1));
  }
  have += chunk;
  const now = Date.now();
  if (now - lastPrint > 250) {
    console.log(`${mode === 'heap' ? 'live' : 'buffers'} ${Math.round(have / 1048576)} MiB`);
    lastPrint = now;
  }
};

const done = () => setTimeout(() => console.log('done'), hold);

if (rate === 0) {
  while (have < target) grow();
  done();
} else {
  // Timers between chunks: the process stays responsive, as a server is.
  const start = Date.now();
  const step = () => {
    while (have < target && have <= (rate * (Date.now() - start)) / 1000) grow();
    if (have < target) setTimeout(step, 10);
    else done();
  };
  step();
}
