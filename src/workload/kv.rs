//! The `kv-cache` workload: a vLLM-like server's KV cache under a ramp of
//! concurrent requests, on the run's device. Each request is prefilled
//! (its prompt's blocks at once), then grows a token per decode step, block
//! by block, and frees its blocks when its output is done.
//!
//! `paged` (vLLM): the budget the planner computes is allocated up front;
//! when no block is free, the newest running sequence is preempted and
//! requeued. `dynamic` (a naive server): every block is a device allocation,
//! and the one past capacity is a CUDA out-of-memory error, recorded with the
//! concurrency and tokens in flight at that moment.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::events::{Event, Events, KvStart, KvState};
use super::load::cuda_oom;
use crate::gpu::{Device, DeviceMemory, GpuError, OutOfMemory};
use crate::llm::kv::{Layout, Settings};
use crate::plan::{KvCache, KvMode};

/// A block: a device allocation (dynamic) or a slot of the pool (paged).
type Block = Option<Box<dyn DeviceMemory>>;

struct Seq {
    id: u64,
    len: u64,
    target: u64,
    /// Blocks held in each layer group.
    held: Vec<Vec<Block>>,
}

impl Seq {
    fn new(id: u64, target: u64, groups: usize) -> Seq {
        Seq {
            id,
            len: 0,
            target,
            held: (0..groups).map(|_| Vec::new()).collect(),
        }
    }
}

/// Where blocks come from.
enum Pool {
    Paged { free: u64 },
    Dynamic,
}

struct Server<'a> {
    dev: &'a dyn Device,
    pool: Pool,
    layout: Layout,
    settings: Settings,
    blocks_held: u64,
    preemptions: u64,
    completed: u64,
}

impl Server<'_> {
    /// One more block; Ok(None) when a paged pool is empty.
    fn block(&mut self) -> Result<Option<Block>, GpuError> {
        let got = match &mut self.pool {
            Pool::Paged { free } if *free == 0 => return Ok(None),
            Pool::Paged { free } => {
                *free -= 1;
                None
            }
            Pool::Dynamic => Some(self.dev.alloc(self.layout.bytes_per_block)?),
        };
        self.blocks_held += 1;
        Ok(Some(got))
    }

    fn give_back(&mut self, n: u64) {
        self.blocks_held -= n;
        if let Pool::Paged { free } = &mut self.pool {
            *free += n;
        }
    }

    fn release(&mut self, seq: &mut Seq) {
        let n: u64 = seq.held.iter().map(|g| g.len() as u64).sum();
        seq.held.iter_mut().for_each(Vec::clear);
        self.give_back(n);
    }

    /// Each group's blocks for `seq` to hold `len` tokens: more for a longer
    /// sequence, fewer where a window moved on. Ok(false) if the pool ran dry.
    fn grow(&mut self, seq: &mut Seq, len: u64) -> Result<bool, GpuError> {
        for g in 0..self.layout.groups.len() {
            let want = self.layout.groups[g].spec.held_at(len, &self.settings) as usize;
            while seq.held[g].len() < want {
                match self.block()? {
                    Some(b) => seq.held[g].push(b),
                    None => return Ok(false),
                }
            }
            let extra = seq.held[g].len().saturating_sub(want);
            seq.held[g].truncate(want);
            self.give_back(extra as u64);
        }
        seq.len = len;
        Ok(true)
    }
}

/// What the run looked like when it ended, or when it failed.
fn snapshot(s: &Server, running: &[Seq], step: u64) -> KvState {
    let groups = s.layout.groups.len().max(1) as u64;
    KvState {
        step,
        concurrency: running.len() as u64,
        tokens_in_flight: running.iter().map(|q| q.len).sum::<u64>(),
        blocks: s.blocks_held,
        // vLLM's count: blocks shared by the groups, in the smallest block's tokens.
        allocated_tokens: s.blocks_held / groups * s.layout.min_block_size(),
        preemptions: s.preemptions,
        completed: s.completed,
        during: None,
        peak_concurrency: None,
    }
}

/// The state before anything was served, with what was being allocated.
fn during(what: &str) -> KvState {
    KvState {
        during: Some(what.into()),
        ..KvState::default()
    }
}

fn oom_with(o: &OutOfMemory, events: &Events, state: KvState) -> i32 {
    events.emit(Event::KvOom(state));
    cuda_oom(o, events)
}

pub fn kv_cache(k: &KvCache, dev: &dyn Device, events: &Events) -> std::io::Result<i32> {
    let io = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let (free, total) = dev.mem_get_info().map_err(|e| io(&e))?;
    let mut inp = k.vllm.clone();
    inp.gpu_memory_bytes = total;
    // vLLM checks what is really free when it starts: whatever else is on
    // the device counts against its utilization.
    inp.other_bytes = total - free;
    inp.margin_bytes = 0;
    let (seqs, batched) = crate::llm::vllm::serve_defaults(total, "");
    inp.max_num_seqs = k.max_num_seqs.unwrap_or(seqs);
    inp.max_num_batched_tokens = batched;
    let plan = crate::llm::vllm::plan(&inp);
    let layout = inp.layout().map_err(|e| io(&e))?;
    let settings = inp.settings();
    let mut held: Vec<Box<dyn DeviceMemory>> = Vec::new();
    // What vLLM allocates before serving: weights, the profile run's
    // activation peak (the sampler's included), non-torch buffers, CUDA graphs.
    for (what, bytes) in [
        ("weights", plan.weights_bytes),
        ("activation", plan.activation_bytes),
        ("non_torch", plan.non_torch_bytes),
        ("cuda_graphs", plan.cuda_graph_bytes),
    ] {
        match dev.alloc(bytes) {
            Ok(m) => held.push(m),
            Err(GpuError::OutOfMemory(o)) => {
                return Ok(oom_with(&o, events, during(what)));
            }
            Err(e) => return Err(io(&e)),
        }
    }
    let (free_now, _) = dev.mem_get_info().map_err(|e| io(&e))?;
    let per_request = k.prompt_tokens + k.output_tokens;
    let pages = layout.pages_for(per_request, &settings).max(1);
    let (pool, usable) = match k.mode {
        KvMode::Paged => {
            if let Some(e) = &plan.error {
                eprintln!("{e}");
                events.emit(Event::Error { message: e.clone() });
                return Ok(1);
            }
            match dev.alloc(plan.kv_blocks * layout.bytes_per_block) {
                Ok(m) => held.push(m),
                Err(GpuError::OutOfMemory(o)) => {
                    return Ok(oom_with(&o, events, during("kv_cache")));
                }
                Err(e) => return Err(io(&e)),
            }
            if let Some(line) = &plan.log_line {
                eprintln!("{line}");
            }
            // Block 0 is the null block, never handed to a request.
            let usable = plan.kv_blocks.saturating_sub(1);
            (Pool::Paged { free: usable }, usable)
        }
        // Every free byte can become a block.
        KvMode::Dynamic => (Pool::Dynamic, free_now / layout.bytes_per_block.max(1)),
    };
    events.emit(Event::KvStart(KvStart {
        mode: k.mode.as_str().into(),
        gpu_memory_utilization: inp.utilization,
        max_num_seqs: inp.max_num_seqs,
        max_model_len: inp.max_model_len,
        request_tokens: per_request,
        kv_bytes_per_token: plan.kv_bytes_per_token,
        block_bytes: layout.bytes_per_block,
        predicted_kv_tokens: match k.mode {
            KvMode::Paged => plan.kv_tokens,
            KvMode::Dynamic => usable / layout.groups.len().max(1) as u64 * layout.min_block_size(),
        },
        predicted_concurrency: usable as f64 / pages as f64,
    }));
    let groups = layout.groups.len();
    let mut server = Server {
        dev,
        pool,
        layout,
        settings,
        blocks_held: 0,
        preemptions: 0,
        completed: 0,
    };
    let mut running: Vec<Seq> = Vec::new();
    let mut waiting: VecDeque<Seq> = VecDeque::new();
    let mut next_id = 0u64;
    let mut peak_concurrency = 0usize;
    let start = Instant::now();
    let step = Duration::from_secs_f64(k.step_s);
    let mut last_progress = start;
    let cap = k.concurrency.min(inp.max_num_seqs).max(1);
    for n in 0u64.. {
        let t = start.elapsed().as_secs_f64();
        if t >= k.duration_s {
            break;
        }
        let ramp = if k.ramp_s > 0.0 {
            (t / k.ramp_s).min(1.0)
        } else {
            1.0
        };
        let target = (1 + ((cap - 1) as f64 * ramp) as u64) as usize;
        // Admit: requeued (preempted) requests first, then new ones.
        while running.len() < target {
            let mut seq = waiting.pop_front().unwrap_or_else(|| {
                next_id += 1;
                Seq::new(next_id, per_request, groups)
            });
            let prefill = seq.len.max(k.prompt_tokens);
            match server.grow(&mut seq, prefill) {
                Ok(true) => running.push(seq),
                Ok(false) => {
                    // Not enough free blocks to prefill: wait, as vLLM's scheduler does.
                    server.release(&mut seq);
                    seq.len = 0;
                    waiting.push_front(seq);
                    break;
                }
                Err(GpuError::OutOfMemory(o)) => {
                    running.push(seq);
                    let state = snapshot(&server, &running, n);
                    return Ok(oom_with(&o, events, state));
                }
                Err(e) => return Err(io(&e)),
            }
        }
        peak_concurrency = peak_concurrency.max(running.len());
        // Decode: every running sequence grows by one token.
        let mut i = 0;
        while i < running.len() {
            let len = running[i].len + 1;
            let mut seq = std::mem::replace(&mut running[i], Seq::new(0, 0, 0));
            match server.grow(&mut seq, len) {
                Ok(true) => {
                    running[i] = seq;
                    i += 1;
                }
                Ok(false) => {
                    // Out of blocks: preempt the newest sequence (recompute later).
                    running[i] = seq;
                    let newest = running
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, q)| q.id)
                        .map_or(i, |(j, _)| j);
                    let mut victim = running.swap_remove(newest);
                    server.release(&mut victim);
                    victim.len = 0;
                    server.preemptions += 1;
                    waiting.push_front(victim);
                }
                Err(GpuError::OutOfMemory(o)) => {
                    running[i] = seq;
                    let state = snapshot(&server, &running, n);
                    return Ok(oom_with(&o, events, state));
                }
                Err(e) => return Err(io(&e)),
            }
        }
        // Finished requests free their blocks.
        let mut j = 0;
        while j < running.len() {
            if running[j].len >= running[j].target {
                let mut done = running.swap_remove(j);
                server.release(&mut done);
                server.completed += 1;
            } else {
                j += 1;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            events.emit(Event::KvProgress(snapshot(&server, &running, n)));
        }
        let due = start + step * (n as u32 + 1);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    let mut end = snapshot(&server, &running, 0);
    end.peak_concurrency = Some(peak_concurrency as u64);
    events.emit(Event::KvDone(end));
    Ok(0)
}
