//! The GPU workloads: `model-load` (weights onto the device) and
//! `kv-cache` (vLLM's KV cache under load), with the model configs they read.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::Checker;
use crate::llm::model::{ModelConfig, kv_cache_dtype};
use crate::llm::vllm;
use crate::plan::{
    DEFAULT_LOAD_CHUNK, KvCache, KvMode, LoadStrategy, ModelLoad, default_model_file,
};
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawWorkload, Text};

impl Checker<'_> {
    pub(super) fn model_load(&self, w: &RawWorkload, at: &str) -> Result<ModelLoad, ScenarioError> {
        let field = |f: &str| format!("{at}.{f}");
        if !self.has_gpu {
            return Err(self.err(
                &w.kind.referenced,
                &field("kind"),
                "a model-load workload needs a gpu: block (backend: auto, cuda or sim)",
            ));
        }
        let size_bytes = match (&w.size, &w.model) {
            (Some(_), None) => {
                if let Some(d) = &w.dtype {
                    return Err(self.err(
                        &d.referenced,
                        &field("dtype"),
                        "dtype goes with model (a config.json); size is already in bytes",
                    ));
                }
                self.bytes(&w.size, &field("size"))?.unwrap_or(0)
            }
            (None, Some(m)) => self.model_bytes(m, w.dtype.as_ref(), at)?,
            (Some(s), Some(_)) => {
                return Err(self.err(
                    &s.referenced,
                    &field("size"),
                    "give size or model (a config.json), not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    &w.kind.referenced,
                    &field("size"),
                    "a model-load workload needs size (e.g. 14Gi) or model (a config.json)",
                ));
            }
        };
        if size_bytes == 0 {
            let loc = w.size.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("size"), "must be more than zero"));
        }
        let strategy = match &w.strategy {
            None => LoadStrategy::ReadThenCopy,
            Some(t) => LoadStrategy::parse(&t.value).ok_or_else(|| {
                self.err(
                    &t.referenced,
                    &field("strategy"),
                    format!(
                        "{:?} is not a loading strategy (read-then-copy, chunked, mmap)",
                        t.value
                    ),
                )
            })?,
        };
        let synthetic = match w.source.as_ref() {
            None => false,
            Some(t) if t.value == "file" => false,
            Some(t) if t.value == "synthetic" => true,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &field("source"),
                    format!("{:?} is not a source (file or synthetic)", t.value),
                ));
            }
        };
        if synthetic && let Some(f) = &w.file {
            return Err(self.err(
                &f.referenced,
                &field("file"),
                "a synthetic source has no file",
            ));
        }
        if synthetic && strategy == LoadStrategy::Mmap {
            let loc = w
                .source
                .as_ref()
                .map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(
                &loc,
                &field("source"),
                "the mmap strategy maps a file; use source: file",
            ));
        }
        if let Some(p) = &w.pinned
            && strategy != LoadStrategy::Chunked
        {
            return Err(self.err(
                &p.referenced,
                &field("pinned"),
                "only the chunked strategy has a buffer to pin",
            ));
        }
        if let Some(k) = &w.keep_host
            && strategy != LoadStrategy::ReadThenCopy
        {
            return Err(self.err(
                &k.referenced,
                &field("keep_host"),
                "only read-then-copy holds a whole host copy",
            ));
        }
        let chunk_bytes = self
            .bytes(&w.chunk, &field("chunk"))?
            .unwrap_or(DEFAULT_LOAD_CHUNK);
        if chunk_bytes < 4096 {
            let loc = w.chunk.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("chunk"), "must be at least 4Ki"));
        }
        let file = if synthetic {
            None
        } else {
            Some(match &w.file {
                Some(f) => self.relative(&f.value),
                None => default_model_file(size_bytes),
            })
        };
        Ok(ModelLoad {
            size_bytes,
            strategy,
            keep_host: w.keep_host.as_ref().is_some_and(|k| k.value),
            chunk_bytes,
            pinned: w.pinned.as_ref().is_some_and(|p| p.value),
            file,
            overhead_bytes: self.bytes(&w.overhead, &field("overhead"))?.unwrap_or(0),
            hold_s: self.seconds(&w.hold, &field("hold"))?.unwrap_or(0.0),
        })
    }

    pub(super) fn kv_cache(&self, w: &RawWorkload, at: &str) -> Result<KvCache, ScenarioError> {
        let field = |f: &str| format!("{at}.{f}");
        if !self.has_gpu {
            return Err(self.err(
                &w.kind.referenced,
                &field("kind"),
                "a kv-cache workload needs a gpu: block (backend: auto, cuda or sim)",
            ));
        }
        let m = w.model.as_ref().ok_or_else(|| {
            self.err(
                &w.kind.referenced,
                &field("model"),
                "a kv-cache workload needs model (a Hugging Face config.json)",
            )
        })?;
        let cfg = ModelConfig::load(&self.relative(&m.value))
            .map_err(|e| self.err(&m.referenced, &field("model"), e.to_string()))?;
        let dtype = cfg
            .compute_dtype(w.dtype.as_ref().map(|d| d.value.as_str()))
            .map_err(|e| {
                let d = w.dtype.as_ref().map_or(m.referenced, |d| d.referenced);
                self.err(&d, &field("dtype"), e.to_string())
            })?;
        let kv_dtype = kv_cache_dtype(w.kv_cache_dtype.as_ref().map(|d| d.value.as_str()), dtype)
            .map_err(|e| {
            let d = w
                .kv_cache_dtype
                .as_ref()
                .map_or(m.referenced, |d| d.referenced);
            self.err(&d, &field("kv_cache_dtype"), e.to_string())
        })?;
        let mode = match w.mode.as_ref() {
            Some(t) if t.value == "paged" => KvMode::Paged,
            Some(t) if t.value == "dynamic" => KvMode::Dynamic,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &field("mode"),
                    format!("{:?} is not a mode (paged or dynamic)", t.value),
                ));
            }
            None => {
                return Err(self.err(
                    &w.kind.referenced,
                    &field("mode"),
                    "a kv-cache workload needs mode (paged or dynamic)",
                ));
            }
        };
        let mut v = vllm::Inputs::new(cfg, 0);
        v.dtype = dtype;
        v.kv_dtype = kv_dtype;
        if let Some(u) = &w.gpu_memory_utilization {
            if !(u.value > 0.0 && u.value <= 1.0) {
                return Err(self.err(
                    &u.referenced,
                    &field("gpu_memory_utilization"),
                    format!("{} is outside (0, 1]", u.value),
                ));
            }
            v.utilization = u.value;
        }
        let positive = |x: &Option<Spanned<u64>>, f: &str| -> Result<Option<u64>, ScenarioError> {
            match x {
                Some(n) if n.value == 0 => {
                    Err(self.err(&n.referenced, &field(f), "must be more than zero"))
                }
                Some(n) => Ok(Some(n.value)),
                None => Ok(None),
            }
        };
        let max_num_seqs = positive(&w.max_num_seqs, "max_num_seqs")?;
        if let Some(n) = positive(&w.max_model_len, "max_model_len")? {
            v.max_model_len = n;
        }
        if v.max_model_len > v.model.max_len.tokens {
            let loc = w
                .max_model_len
                .as_ref()
                .map_or(m.referenced, |t| t.referenced);
            return Err(self.err(
                &loc,
                &field("max_model_len"),
                format!(
                    "{} is more than the model allows ({}={}); vLLM refuses it",
                    v.max_model_len, v.model.max_len.key, v.model.max_len.tokens
                ),
            ));
        }
        v.kv_cache_memory = self.bytes(&w.kv_cache_memory, &field("kv_cache_memory"))?;
        v.weights = self.bytes(&w.weights, &field("weights"))?;
        v.activation = self.bytes(&w.activation, &field("activation"))?;
        let prompt_tokens = positive(&w.prompt, "prompt")?.unwrap_or(512);
        let output_tokens = positive(&w.output, "output")?.unwrap_or(512);
        if prompt_tokens + output_tokens > v.max_model_len {
            let loc = w
                .prompt
                .as_ref()
                .map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(
                &loc,
                &field("prompt"),
                format!(
                    "prompt + output ({}) is longer than max_model_len {}",
                    prompt_tokens + output_tokens,
                    v.max_model_len
                ),
            ));
        }
        let concurrency = positive(&w.concurrency, "concurrency")?
            .or(max_num_seqs)
            .unwrap_or(vllm::serve_defaults(0, "").0);
        let step_s = self.seconds(&w.step, &field("step"))?.unwrap_or(0.005);
        if step_s <= 0.0 {
            let loc = w.step.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("step"), "must be more than zero"));
        }
        Ok(KvCache {
            mode,
            vllm: v,
            max_num_seqs,
            prompt_tokens,
            output_tokens,
            concurrency,
            ramp_s: self.seconds(&w.ramp, &field("ramp"))?.unwrap_or(10.0),
            step_s,
            duration_s: self
                .seconds(&w.duration, &field("duration"))?
                .unwrap_or(30.0),
        })
    }

    /// A path in the scenario, relative to the scenario's own folder.
    pub(super) fn relative(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            Path::new(self.path)
                .parent()
                .unwrap_or(Path::new("."))
                .join(p)
        }
    }

    /// Weight bytes of a config.json at a dtype (the config's own by default).
    pub(super) fn model_bytes(
        &self,
        m: &Text,
        dtype: Option<&Text>,
        at: &str,
    ) -> Result<u64, ScenarioError> {
        let cfg = ModelConfig::load(&self.relative(&m.value))
            .map_err(|e| self.err(&m.referenced, &format!("{at}.model"), e.to_string()))?;
        let dtype = cfg
            .compute_dtype(dtype.map(|d| d.value.as_str()))
            .map_err(|e| {
                let loc = dtype.map_or(m.referenced, |d| d.referenced);
                self.err(&loc, &format!("{at}.dtype"), e.to_string())
            })?;
        Ok(cfg.weight_bytes(dtype, 1))
    }
}
