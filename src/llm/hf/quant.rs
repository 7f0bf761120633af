//! `quantization_config`: what the linear layers' weights are stored in.

use serde_json::Value;

use super::{Fields, short};
use crate::llm::model::{ModelError, Quantization};

/// `quantization_config`: how many bytes the linear layers' weights take.
pub(super) fn quantization(f: &Fields) -> Result<Option<Quantization>, ModelError> {
    let Some(q) = f.either("quantization_config") else {
        return Ok(None);
    };
    let bad = |expected| ModelError::Invalid {
        path: f.path.to_string(),
        field: "quantization_config".into(),
        value: short(q),
        expected,
    };
    let o = q.as_object().ok_or_else(|| bad("it must be an object"))?;
    let num = |k: &str| o.get(k).and_then(Value::as_i64);
    let method = o
        .get("quant_method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let int = |bits: Option<i64>, group: Option<i64>| -> Result<Quantization, ModelError> {
        let bits =
            bits.filter(|b| (2..=8).contains(b))
                .ok_or_else(|| bad("it must give bits (or w_bit) from 2 to 8"))? as u64;
        // group_size -1: one scale per output channel, as good as no group at this scale.
        let group = match group {
            Some(g) if g > 0 => g as u64,
            _ => u64::MAX,
        };
        Ok(Quantization::Int { bits, group })
    };
    Ok(Some(match method.as_str() {
        "fp8" | "fbgemm_fp8" | "modelopt" => Quantization::Fp8 {
            block: o
                .get("weight_block_size")
                .and_then(Value::as_array)
                .and_then(|b| b.first())
                .and_then(Value::as_u64),
        },
        "awq" | "awq_marlin" | "gptq" | "gptq_marlin" | "autoround" => int(
            num("bits").or_else(|| num("w_bit")),
            num("group_size").or_else(|| num("q_group_size")),
        )?,
        "bitsandbytes" => Quantization::Bnb {
            bits: if o.get("load_in_8bit").and_then(Value::as_bool) == Some(true) {
                8
            } else {
                4
            },
        },
        "compressed-tensors" => {
            let weights = o
                .get("config_groups")
                .and_then(Value::as_object)
                .and_then(|g| g.values().next())
                .and_then(|g| g.get("weights"))
                .ok_or_else(|| bad("compressed-tensors needs config_groups.*.weights"))?;
            let bits = weights.get("num_bits").and_then(Value::as_i64);
            if weights.get("type").and_then(Value::as_str) == Some("float") && bits == Some(8) {
                Quantization::Fp8 { block: None }
            } else {
                int(bits, weights.get("group_size").and_then(Value::as_i64))?
            }
        }
        _ => {
            return Err(bad(
                "not a quantization oomsim sizes (fp8, awq, gptq, bitsandbytes, compressed-tensors)",
            ));
        }
    }))
}
