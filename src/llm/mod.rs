//! Language models on GPUs: Hugging Face configs read as vLLM reads them,
//! parameter counts and weight bytes, vLLM's per-layer KV cache planning and
//! memory budget, the settings that serve, and the weights files model-load reads.

pub mod describe;
pub mod hf;
pub mod kv;
pub mod model;
pub mod params;
pub mod recommend;
#[cfg(test)]
pub(crate) mod tests;
pub mod vllm;
pub mod weights;
