//! Axes: a range, linear or logarithmic, its ticks at round values and
//! their labels in a unit that suits the data (KiB, MiB or GiB for bytes),
//! written with no decimals they do not need.

/// What an axis measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Bytes, shown in the binary unit `Scale` picked for the data.
    Bytes(Scale),
    Seconds,
    /// A share from 0 to 1, shown in percent.
    Share,
    /// Plain counts (tokens, sequences).
    Count,
}

/// A binary unit for a bytes axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    KiB,
    MiB,
    GiB,
}

impl Scale {
    /// The unit in which the largest value reads as a number from 4 up.
    pub fn for_max(bytes: f64) -> Scale {
        if bytes >= 4.0 * GIB {
            Scale::GiB
        } else if bytes >= 4.0 * MIB {
            Scale::MiB
        } else {
            Scale::KiB
        }
    }

    pub fn bytes(self) -> f64 {
        match self {
            Scale::KiB => 1024.0,
            Scale::MiB => MIB,
            Scale::GiB => GIB,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scale::KiB => "KiB",
            Scale::MiB => "MiB",
            Scale::GiB => "GiB",
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Bytes as a label: Kubernetes' own suffix (`256Mi`), with a decimal only
/// where the value needs one (`63.2Mi`).
pub fn bytes_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        return crate::units::fmt_quantity(bytes);
    }
    let scale = Scale::for_max(bytes as f64);
    let v = bytes as f64 / scale.bytes();
    let unit = &scale.name()[..2];
    trim(v, 1) + unit
}

/// Seconds as a label: `3.07 s`, `19.1 s`, `120 s`.
pub fn seconds_label(s: f64) -> String {
    let digits = if s < 100.0 { 2 } else { 0 };
    format!("{} s", trim(s, digits))
}

/// `v` with at most `digits` decimals and no trailing zeros.
pub fn trim(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub unit: Unit,
}

impl Axis {
    /// A linear axis over [lo, hi], widened to round tick values.
    pub fn linear(lo: f64, hi: f64, unit: Unit) -> Axis {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        let hi = if hi > lo { hi } else { lo + unit_size(unit) };
        let scale = unit_size(unit);
        let step = nice_step((hi - lo) / scale / 5.0) * scale;
        Axis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            log: false,
            unit,
        }
    }

    /// A logarithmic axis over [lo, hi] (both above zero), widened to
    /// powers of ten.
    pub fn log(lo: f64, hi: f64, unit: Unit) -> Axis {
        let lo = lo.max(f64::MIN_POSITIVE);
        let hi = hi.max(lo * 10.0);
        Axis {
            lo: 10f64.powf(lo.log10().floor()),
            hi: 10f64.powf(hi.log10().ceil()),
            log: true,
            unit,
        }
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi` (outside: below 0 or above 1).
    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            let v = v.max(self.lo * 1e-3);
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// The values that get a tick and a label.
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut out = Vec::new();
            let mut decade = self.lo;
            while decade <= self.hi * 1.0001 && out.len() < 60 {
                for m in [1.0, 2.0, 5.0] {
                    let v = decade * m;
                    if v <= self.hi * 1.0001 {
                        out.push(v);
                    }
                }
                decade *= 10.0;
            }
            return out;
        }
        let scale = unit_size(self.unit);
        let step = nice_step((self.hi - self.lo) / scale / 5.0) * scale;
        // At most a few dozen ticks, whatever the range.
        let n = (((self.hi - self.lo) / step).round() as usize).min(40);
        (0..=n).map(|k| self.lo + step * k as f64).collect()
    }

    /// A tick's label: a number in the axis's unit, with only the decimals
    /// the ticks need to differ.
    pub fn label(&self, v: f64) -> String {
        let ticks = self.ticks();
        let scale = unit_size(self.unit);
        let mut digits = 0;
        while digits < 3 {
            let mut seen: Vec<String> = ticks.iter().map(|t| trim(t / scale, digits)).collect();
            seen.dedup();
            if seen.len() == ticks.len() {
                break;
            }
            digits += 1;
        }
        trim(v / scale, digits)
    }

    /// The unit's name for the axis title (`MiB`, `seconds`, `%`).
    pub fn unit_name(&self) -> &'static str {
        match self.unit {
            Unit::Bytes(s) => s.name(),
            Unit::Seconds => "seconds",
            Unit::Share => "%",
            Unit::Count => "",
        }
    }
}

/// What one axis unit is worth in data units.
fn unit_size(unit: Unit) -> f64 {
    match unit {
        Unit::Bytes(s) => s.bytes(),
        Unit::Share => 0.01,
        Unit::Seconds | Unit::Count => 1.0,
    }
}

/// The round step (1, 2 or 5 times a power of ten) nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_axes_scale_to_the_data_without_needless_decimals() {
        let a = Axis::linear(0.0, 250.0 * MIB, Unit::Bytes(Scale::for_max(250.0 * MIB)));
        assert_eq!(a.unit_name(), "MiB");
        let labels: Vec<String> = a.ticks().iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, ["0", "50", "100", "150", "200", "250"]);
        let g = Axis::linear(0.0, 14.5 * GIB, Unit::Bytes(Scale::for_max(14.5 * GIB)));
        assert_eq!(g.unit_name(), "GiB");
        assert!(g.ticks().iter().all(|t| !g.label(*t).contains('.')));
        let k = Axis::linear(
            0.0,
            900.0 * 1024.0,
            Unit::Bytes(Scale::for_max(900.0 * 1024.0)),
        );
        assert_eq!(k.unit_name(), "KiB");
        let fine = Axis::linear(0.0, 0.5, Unit::Seconds);
        assert_eq!(fine.label(0.1), "0.1");
    }

    #[test]
    fn labels_read_as_kubernetes_quantities() {
        assert_eq!(bytes_label(64 << 20), "64Mi");
        assert_eq!(bytes_label(66_271_232), "63.2Mi");
        assert_eq!(bytes_label(8 << 30), "8Gi");
        assert_eq!(seconds_label(3.07), "3.07 s");
        assert_eq!(seconds_label(19.13), "19.13 s");
        assert_eq!(bytes_label(3 << 30), "3Gi");
    }

    #[test]
    fn log_axes_tick_at_1_2_5() {
        let a = Axis::log(3.0, 800.0, Unit::Count);
        assert_eq!(a.lo, 1.0);
        assert_eq!(a.hi, 1000.0);
        assert_eq!(a.ticks()[..4], [1.0, 2.0, 5.0, 10.0]);
        assert!((a.frac(10.0) - 1.0 / 3.0).abs() < 1e-9);
    }
}
