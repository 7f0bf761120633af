//! Language models on GPUs: Hugging Face configs (what memory depends on),
//! vLLM's KV cache arithmetic, and the weights files model-load reads.

pub mod model;
pub mod recommend;
pub mod vllm;
pub mod weights;
