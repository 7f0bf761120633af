//! Hand-computed values from vLLM 0.33's formulas on the shipped configs.
//! The figures at 8 GiB of KV cache were also produced by vLLM 0.33.0's own
//! planning code (vllm/v1/core/kv_cache_planning.py) for the same layers.

use super::kv::SpecKind;
use super::model::{Dtype, Mixer, ModelConfig, ModelError};
use super::vllm::{Inputs, Refusal, plan};

const GIB: u64 = 1 << 30;

pub(crate) fn shipped(name: &str) -> ModelConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/models")
        .join(format!("{name}.json"));
    ModelConfig::load(&path).unwrap()
}

/// One 80Gi GPU with exactly `kv` bytes of KV cache (`--kv-cache-memory-bytes`).
fn at(name: &str, kv: u64, len: u64) -> Inputs {
    let mut inp = Inputs::new(shipped(name), 80 * GIB);
    inp.kv_cache_memory = Some(kv);
    inp.max_model_len = len;
    inp
}

fn json(v: serde_json::Value) -> Result<ModelConfig, ModelError> {
    super::hf::from_value(&v, "m.json")
}

/// A two-layer config with `key` set to `value`.
fn tiny(key: &str, value: serde_json::Value) -> Result<ModelConfig, ModelError> {
    let mut c = serde_json::json!({"num_hidden_layers": 2, "num_attention_heads": 4,
        "hidden_size": 256, "vocab_size": 100});
    c[key] = value;
    json(c)
}

#[test]
fn full_attention_llama() {
    let p = plan(&at("llama-3.1-8b-instruct", 8 * GIB, 8192));
    // Page: 16 tokens x 8 KV heads x (K + V) x 128 x 2 bytes = 65,536; one
    // group of 32 layers, so a pool block is 32 x 65,536 = 2 MiB.
    assert_eq!((p.groups.len(), p.groups[0].spec.page_bytes), (1, 65_536));
    assert_eq!(p.bytes_per_block, 2 << 20);
    assert_eq!(p.kv_bytes_per_token, 32 * 8 * 2 * 128 * 2);
    // 8 GiB / 2 MiB = 4096 blocks; 8192 / 16 = 512 a request: 8.00x, 65,536 tokens.
    assert_eq!((p.kv_blocks, p.kv_tokens), (4096, 65_536));
    assert_eq!(
        p.log_line.as_deref(),
        Some(
            "GPU KV cache size: 65,536 tokens, Maximum concurrency for 8,192 tokens per request: 8.00x"
        )
    );
    // The null block is never handed out: 4095 / 512 = 7 full requests.
    assert_eq!(p.max_concurrent_at_max_len, 7);
}

#[test]
fn head_dim_override_and_missing_kv_heads() {
    // Qwen3-0.6B: hidden 1024 / 16 heads would be 64; head_dim says 128.
    let q = shipped("qwen3-0.6b");
    assert_eq!((q.head_size, q.num_key_value_heads), (128, 8));
    // use_sliding_window false: every layer full attention.
    assert!(q.layers.iter().all(|l| l.mixer == Mixer::Full));
    // 28 layers x 65,536 = 1,835,008 a block; 8 GiB of it is 4681 blocks; 4681 / 512 = 9.14x.
    let p = plan(&at("qwen3-0.6b", 8 * GIB, 8192));
    assert_eq!((p.kv_blocks, p.kv_tokens), (4681, 74_896));
    // Llama-2: no num_key_value_heads, so as many as heads (32).
    assert_eq!(shipped("llama-2-7b").num_key_value_heads, 32);
}

#[test]
fn sliding_window_every_layer_mistral_and_phi3() {
    let p = plan(&at("mistral-7b-v0.1", 8 * GIB, 8192));
    assert_eq!(
        p.groups[0].spec.kind,
        SpecKind::SlidingWindow { window: 4096 }
    );
    // A request: min(4095 + 2 batches x 8192 in flight, 8192) = 8192 tokens,
    // 512 blocks + 1 (the window need not start on a block): 4096 / 513 = 7.98x.
    assert_eq!(p.groups[0].pages_per_request, 513);
    assert_eq!(p.kv_tokens, 4096 * 8192 / 513);
    assert!(p.log_line.unwrap().ends_with("7.98x"));
    // Phi-3 slides 2047 on all 32 layers: page 16 x 32 x 2 x 96 x 2 = 196,608;
    // 8 GiB / (32 x 196,608) = 1365 blocks; 4096 / 16 + 1 = 257 a request.
    let p = plan(&at("phi-3-mini-4k-instruct", 8 * GIB, 4096));
    assert_eq!((p.kv_blocks, p.groups[0].pages_per_request), (1365, 257));
    assert_eq!(p.kv_tokens, 21_755);
}

#[test]
fn interleaved_windows_gemma2_and_gemma3() {
    let p = plan(&at("gemma-2-9b-it", 8 * GIB, 8192));
    // Even layers slide (4096), odd are global: two buckets of 21, one group each.
    assert_eq!(p.groups.len(), 2);
    assert_eq!(p.groups[0].layers[..3], [0, 2, 4]);
    assert_eq!(p.groups[1].spec.kind, SpecKind::FullAttention);
    // Page 16 x 8 x 2 x 256 x 2 = 131,072; block 21 x 131,072 = 2,752,512;
    // 8,589,934,592 / 2,752,512 = 3120; a request 513 + 512 = 1025 blocks.
    assert_eq!((p.bytes_per_block, p.kv_blocks), (2_752_512, 3120));
    assert_eq!(p.kv_tokens, 24_935); // int(3120 / 1025 x 8192)
    // Gemma-3 (text_config, class defaults: 8 heads, 4 KV heads, head 256):
    // layers 5, 11, 17, 23, 29 global, 29 slide over 1024.
    let g = shipped("gemma-3-4b-it");
    assert_eq!(
        (g.num_key_value_heads, g.head_size, g.num_layers()),
        (4, 256, 34)
    );
    let global: Vec<usize> = (0..34)
        .filter(|&i| g.layers[i].mixer == Mixer::Full)
        .collect();
    assert_eq!(global, [5, 11, 17, 23, 29]);
    let p = plan(&at("gemma-3-4b-it", 8 * GIB, 8192));
    // Group size 5 (the smaller bucket): 29 sliding layers in 6 groups, 5 global in 1.
    assert_eq!(p.groups.len(), 7);
    assert_eq!(p.groups[5].num_layers, 4);
    // Block 5 x 65,536; 26,214 blocks; 6 x 513 + 512 = 3590 a request: 7.30x.
    assert_eq!((p.kv_blocks, p.kv_tokens), (26_214, 59_817));
}

#[test]
fn mla_deepseek_v2_lite() {
    let p = plan(&at("deepseek-v2-lite", 8 * GIB, 8192));
    // One latent of kv_lora_rank 512 + qk_rope_head_dim 64 = 576, no K/V pair:
    // 16 x 576 x 2 = 18,432 a page, 27 layers: 497,664 a block.
    assert_eq!(
        (p.groups[0].spec.kind, p.groups[0].spec.page_bytes),
        (SpecKind::Mla, 18_432)
    );
    assert_eq!(p.kv_bytes_per_token, 27 * 576 * 2);
    assert_eq!((p.kv_blocks, p.kv_tokens), (17_260, 276_160));
    // Counted as K and V for 16 heads of 192 it would be 2 x 16 x 192 / 576 = 10.7x larger.
}

#[test]
fn hybrid_mamba_jamba() {
    let j = shipped("jamba-v0.1");
    let attention: Vec<usize> = (0..32)
        .filter(|&i| j.layers[i].mixer != Mixer::Mamba)
        .collect();
    assert_eq!(attention, [4, 12, 20, 28]);
    let p = plan(&at("jamba-v0.1", 8 * GIB, 8192));
    // Mamba state: conv 3 x 8192 + ssm 8192 x 16 = 155,648 values, 311,296 bytes.
    // Attention token 8 x 2 x 128 x 2 = 4096 bytes; block 16 x ceil(311,296 / 65,536) = 80
    // tokens, page 80 x 4096 = 327,680 (the state padded to it).
    assert_eq!((p.block_size, p.groups[0].spec.page_bytes), (80, 327_680));
    // 28 mamba layers in 7 groups of 4, the 4 attention layers in one.
    assert_eq!(p.groups.len(), 8);
    // 8 GiB / (4 x 327,680) = 6553; a request: 7 x 2 states + ceil(8192 / 80) = 117.
    assert_eq!(p.kv_blocks, 6553);
    assert_eq!(format!("{:.2}", p.max_concurrency), "56.01");
    // 96 GiB of bf16 weights do not load on one 80Gi GPU; on two they do.
    assert_eq!(p.refusal, Some(Refusal::Weights));
}

#[test]
fn parameters_count_every_expert() {
    // Mixtral, a layer: attention 4096 x 4096 x 2 + 4096 x 1024 x 2 = 41,943,040;
    // 8 experts x 3 x 4096 x 14,336 = 1,409,286,144; router 32,768; norms 8192.
    // 32 layers + 2 x 32,000 x 4096 embeddings + final norm = 46,702,792,704 (card: 46.7B).
    assert_eq!(
        shipped("mixtral-8x7b-instruct-v0.1").parameters(),
        46_702_792_704
    );
    // DeepSeek-V2-Lite: MLA 13,763,072 a layer; layer 0 dense (3 x 2048 x 10,944);
    // 26 layers of 64 experts x 3 x 2048 x 1408 + 2 shared + router; (card: 15.7B).
    assert_eq!(shipped("deepseek-v2-lite").parameters(), 15_706_484_224);
    // Gemma-2 ties its output layer and has 4 norms a layer (card: 9.24B).
    assert_eq!(shipped("gemma-2-9b-it").parameters(), 9_241_705_984);
}

#[test]
fn quantized_weights() {
    // AWQ 4-bit, group 128: linear 32 x 218,103,808 = 6,979,321,856 weights ->
    // 3,489,660,928 + 54,525,952 groups x (2 + 0.5) bytes; embeddings in bf16.
    let awq = shipped("mistral-7b-instruct-v0.1-awq");
    assert_eq!(awq.weight_bytes(Dtype::Bf16, 1), 4_150_796_288);
    // fp8 with 128 x 128 blocks: about half of bf16.
    let fp8 = shipped("qwen3-32b-fp8");
    let (q, full) = (fp8.weight_bytes(Dtype::Bf16, 1), fp8.parameters() * 2);
    assert!(q * 100 / full > 50 && q * 100 / full < 55, "{q} of {full}");
}

#[test]
fn tensor_parallel_splits_weights_and_kv_heads() {
    let mut inp = at("llama-3.1-8b-instruct", 8 * GIB, 8192);
    let one = plan(&inp);
    inp.tensor_parallel = 2;
    let two = plan(&inp);
    // 4 KV heads a GPU: half the page, twice the blocks in the same memory.
    assert_eq!(two.kv_blocks, 2 * one.kv_blocks);
    assert!(two.weights_bytes < one.weights_bytes / 2 + (1 << 20));
    // 16 GPUs for 8 KV heads: each keeps one (replicated), no fewer.
    inp.tensor_parallel = 16;
    assert_eq!(plan(&inp).kv_bytes_per_token, 32 * 2 * 128 * 2);
    inp.tensor_parallel = 3;
    let p = plan(&inp);
    assert_eq!(p.refusal, Some(Refusal::TensorParallel));
    assert!(p.error.unwrap().contains(
        "Total number of attention heads (32) must be divisible by tensor parallel size (3)."
    ));
}

#[test]
fn the_null_block_at_the_boundary() {
    // 8192 tokens take 512 blocks of 2 MiB; the check keeps one back, so 513 are needed.
    let fits = |bytes| plan(&at("llama-3.1-8b-instruct", bytes, 8192));
    let short = fits(513 * (2 << 20) - 1);
    assert_eq!(short.refusal, Some(Refusal::KvTooSmall));
    assert_eq!(short.largest_max_model_len, 511 * 16);
    let p = fits(513 * (2 << 20));
    assert!(p.starts);
    assert_eq!(
        p.log_line.unwrap(),
        "GPU KV cache size: 8,208 tokens, Maximum concurrency for 8,192 tokens per request: 1.00x"
    );
    assert_eq!(p.max_concurrent_at_max_len, 1);
}

#[test]
fn vllm_error_texts() {
    // 131072 tokens need 8192 x 2 MiB = 16 GiB; 8 GiB less a block is there,
    // enough for 4095 blocks: 65,520 tokens.
    let p = plan(&at("llama-3.1-8b-instruct", 8 * GIB, 131_072));
    assert_eq!(
        p.error.unwrap(),
        "ValueError: To serve at least one request with the model's max seq len (131072), (16.0 GiB KV cache is needed, which is larger than the available KV cache memory (8.0 GiB). Based on the available memory, the estimated maximum model length is 65520. Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    );
    // Above the config's limit (RoPE model: vLLM prints it as a float).
    let p = plan(&at("llama-3-8b", 8 * GIB, 16_384));
    assert_eq!(p.refusal, Some(Refusal::MaxModelLen));
    assert!(p.error.unwrap().starts_with(
        "ValueError: User-specified max_model_len (16384) is greater than the derived max_model_len (max_position_embeddings=8192.0 or model_max_length=None in model's config.json)."
    ));
    // Another process holds 2Gi of 24Gi: 21Gi free, 0.92 asks for 22.08.
    let mut inp = Inputs::new(shipped("llama-3-8b"), 24 * GIB);
    inp.other_bytes = 2 * GIB;
    let p = plan(&inp);
    assert_eq!(
        p.error.unwrap(),
        "ValueError: Free memory on device cuda:0 (21.0/24.0 GiB) on startup is less than desired GPU memory utilization (0.92, 22.08 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    );
    // Nothing left after the weights.
    let p = plan(&Inputs::new(shipped("llama-3-8b"), 17 * GIB));
    assert_eq!(p.refusal, Some(Refusal::NoKvMemory));
}

#[test]
fn weights_must_fit_before_any_kv_cache() {
    // Mixtral in bf16 (87 GiB) does not load on one 80Gi GPU, fixed KV size or not.
    let p = plan(&at("mixtral-8x7b-instruct-v0.1", GIB, 4096));
    assert_eq!(p.refusal, Some(Refusal::Weights));
    let mut two = at("mixtral-8x7b-instruct-v0.1", GIB, 4096);
    two.tensor_parallel = 2;
    assert!(plan(&two).starts);
}

#[test]
fn config_shapes() {
    // float32 configs run in bf16; a missing dtype too; fp16 stays fp16 except for Gemma-2/3.
    let base = serde_json::json!({"num_hidden_layers": 2, "num_attention_heads": 4,
        "hidden_size": 256, "vocab_size": 100});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        json(c).unwrap()
    };
    assert_eq!(
        with("torch_dtype", "float32".into()).auto_dtype(),
        Dtype::Bf16
    );
    assert_eq!(json(base.clone()).unwrap().auto_dtype(), Dtype::Bf16);
    assert_eq!(
        with("torch_dtype", "float16".into()).auto_dtype(),
        Dtype::Fp16
    );
    // Fields nested under thinker_config.text_config are found and named.
    let base = serde_json::json!({"num_hidden_layers": 2, "num_attention_heads": 4,
        "hidden_size": 256, "vocab_size": 100});
    let nested = serde_json::json!({"thinker_config": {"text_config": base}});
    assert_eq!(json(nested).unwrap().num_layers(), 2);
    let e = json(serde_json::json!({"text_config": {"num_hidden_layers": 2}}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "m.json: text_config.hidden_size is missing (and \"\" has no default for it)"
    );
    // Mistral without a sliding_window key slides 4096 (its class default); Mixtral's null does not.
    let mistral = with("model_type", "mistral".into());
    assert_eq!(mistral.layers[0].mixer, Mixer::Sliding { window: 4096 });
    assert!(
        shipped("mixtral-8x7b-instruct-v0.1")
            .layers
            .iter()
            .all(|l| l.mixer == Mixer::Full)
    );
    // Limits: yarn states the full length (DeepSeek 163840), Jamba has no RoPE (an int).
    let d = shipped("deepseek-v2-lite").max_len;
    assert_eq!((d.tokens, d.shown()), (163_840, "163840.0".to_string()));
    assert_eq!(shipped("jamba-v0.1").max_len.shown(), "262144");
    assert_eq!(shipped("llama-3.1-8b-instruct").max_len.tokens, 131_072);
}

#[test]
fn bad_configs_are_named() {
    let err = |k: &str, v: serde_json::Value| tiny(k, v).unwrap_err().to_string();
    assert_eq!(
        err("num_attention_heads", 0.into()),
        "m.json: num_attention_heads is 0: it must be more than zero"
    );
    assert!(
        err("hidden_size", "big".into())
            .contains("hidden_size is \"big\": it must be a whole number")
    );
    assert_eq!(
        err(
            "layer_types",
            serde_json::json!(["full_attention", "diagonal"])
        ),
        "m.json: layer_types[1] is \"diagonal\": not an attention kind vLLM knows (full_attention, sliding_attention, chunked_attention, mamba)"
    );
    assert!(
        err("layer_types", serde_json::json!(["full_attention"])).contains("one kind per layer")
    );
    assert!(err("hidden_size", 2.into()).contains("hidden_size / num_attention_heads is 0"));
    // Long values are shortened on a character boundary, never split mid-character.
    let e = json(serde_json::json!("é".repeat(50)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("...: a config.json is one JSON object"), "{e}");
    assert_eq!(
        err(
            "layer_types",
            serde_json::json!(["linear_attention", "full_attention"])
        ),
        "m.json: layer_types[0]: a linear-attention state is not sized by oomsim (attention, MLA and Jamba's mamba are)"
    );
    let mut mamba2 = serde_json::json!({"num_hidden_layers": 2, "num_attention_heads": 4,
        "hidden_size": 256, "vocab_size": 100, "layer_types": ["mamba", "attention"]});
    for (k, v) in [
        ("mamba_expand", 2),
        ("mamba_d_state", 128),
        ("mamba_d_conv", 4),
        ("mamba_n_heads", 64),
    ] {
        mamba2[k] = v.into();
    }
    assert!(
        json(mamba2)
            .unwrap_err()
            .to_string()
            .contains("mamba_n_heads: a mamba2 state")
    );
}
