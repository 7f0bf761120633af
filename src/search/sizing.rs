//! Sizing formulas, checked against the smallest safe limit a search measured:
//! the built-in rules people size pods with, and the user's own as
//! expressions over named quantities (`model * 1.5 + 4Gi`).

use crate::report::search::{Fit, FormulaCheck};
use crate::units::{self, UnitError};

/// Why a user formula did not parse or evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("unexpected {token} in {expr:?}")]
    Unexpected { token: String, expr: String },
    #[error("unknown name {name:?} in {expr:?} (known: {known})")]
    UnknownName {
        name: String,
        expr: String,
        known: String,
    },
    #[error("the expression ends too early")]
    EndsEarly,
    #[error("missing ')'")]
    MissingParen,
    #[error(transparent)]
    Quantity(#[from] UnitError),
    #[error("{0} has no value in this run")]
    NoValue(String),
    #[error("division by zero")]
    DivisionByZero,
    #[error("divides by something that is always zero")]
    ZeroDivisor,
    #[error("longer than {MAX_LEN} characters")]
    TooLong,
    #[error("nested deeper than {MAX_DEPTH} parentheses or signs")]
    TooDeep,
}

/// The longest formula read: parsing and evaluating recurse, so both the
/// length (left-nested chains) and the nesting (parentheses, unary minus)
/// are bounded, far above any real formula.
pub const MAX_LEN: usize = 1000;
pub const MAX_DEPTH: usize = 32;

/// Names a user formula may use besides the scenario's `vars`.
pub const BUILTIN_VARS: [&str; 4] = ["peak", "p90", "min_safe", "oom_limit"];

/// How a recommendation compares with the measured minimum.
pub fn fit(recommended: f64, min_safe: f64) -> Fit {
    let margin = recommended / min_safe - 1.0;
    if recommended < min_safe {
        Fit::Unsafe
    } else if margin < 0.10 {
        Fit::Tight
    } else if margin <= 0.50 {
        Fit::Fine
    } else {
        Fit::Wasteful
    }
}

/// What the formulas are computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub min_safe_bytes: u64,
    /// Largest peak of a surviving trial.
    pub peak_bytes: u64,
    /// 90th percentile of usage samples in surviving trials (VPA's target percentile).
    pub p90_bytes: u64,
    /// Largest limit that was OOMKilled, if any was.
    pub oom_limit_bytes: Option<u64>,
    /// The scenario's named quantities.
    pub vars: Vec<(String, f64)>,
    /// The scenario's own formulas.
    pub user: Vec<(String, Expr)>,
}

impl Inputs {
    fn var(&self, name: &str) -> Option<f64> {
        match name {
            "peak" => Some(self.peak_bytes as f64),
            "p90" => Some(self.p90_bytes as f64),
            "min_safe" => Some(self.min_safe_bytes as f64),
            "oom_limit" => self.oom_limit_bytes.map(|b| b as f64),
            _ => self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
        }
    }
}

const MI: f64 = 1024.0 * 1024.0;
const GI: f64 = 1024.0 * MI;

/// Every built-in rule that applies, then the user's, each checked.
pub fn check_all(inp: &Inputs) -> Vec<FormulaCheck> {
    let peak = inp.peak_bytes as f64;
    let mut rules: Vec<(String, String, f64)> = Vec::new();
    let mut add = |name: &str, rule: &str, v: f64| rules.push((name.into(), rule.into(), v));
    if let Some(model) = inp.var("model") {
        add(
            "dual-residency",
            "model x 1.5 + 4Gi",
            model * 1.5 + 4.0 * GI,
        );
    }
    add("peak+30%", "peak x 1.3", peak * 1.3);
    add("peak+50%", "peak x 1.5", peak * 1.5);
    add(
        "vpa-target",
        "P90 of usage x 1.15 (VPA recommender)",
        inp.p90_bytes as f64 * 1.15,
    );
    add(
        "vpa-oom-bump",
        "max(peak + 100Mi, peak x 1.2) (VPA after an OOM)",
        (peak + 100.0 * MI).max(peak * 1.2),
    );
    add(
        "krr-simple",
        "peak x 1.15 (Robusta KRR simple)",
        peak * 1.15,
    );
    if let Some(oom) = inp.oom_limit_bytes {
        add(
            "krr-simple-oom",
            "OOMKilled limit x 1.25 (KRR with OOM data)",
            oom as f64 * 1.25,
        );
    }
    if let Some(heap) = inp.var("jvm_heap") {
        add(
            "jvm-heap-70%",
            "jvm_heap / 0.70 (heap at 70% of the limit)",
            heap / 0.70,
        );
        add(
            "jvm-heap-60%",
            "jvm_heap / 0.60 (heap at 60% of the limit)",
            heap / 0.60,
        );
    }
    if let Some(gml) = inp.var("gomemlimit") {
        add("gomemlimit-90%", "GOMEMLIMIT / 0.90", gml / 0.90);
        add("gomemlimit-80%", "GOMEMLIMIT / 0.80", gml / 0.80);
    }
    add(
        "alert-at-90%",
        "peak / 0.90 (peak stays under a 90% alert)",
        peak / 0.90,
    );
    add(
        "alert-at-85%",
        "peak / 0.85 (peak stays under an 85% alert)",
        peak / 0.85,
    );
    let min_safe = inp.min_safe_bytes.max(1) as f64;
    let checked = |(name, rule, v): (String, String, f64)| FormulaCheck {
        name,
        rule,
        recommended_bytes: v.max(0.0).round() as u64,
        margin: v / min_safe - 1.0,
        fit: fit(v, min_safe),
        error: None,
    };
    let mut out: Vec<FormulaCheck> = rules.into_iter().map(checked).collect();
    // The user's own: one that cannot be evaluated here is reported, not dropped.
    for (name, expr) in &inp.user {
        out.push(match expr.eval(&|n| inp.var(n)) {
            Ok(v) => checked((name.clone(), expr.source.clone(), v)),
            Err(e) => FormulaCheck {
                name: name.clone(),
                rule: expr.source.clone(),
                recommended_bytes: 0,
                margin: 0.0,
                fit: Fit::Failed,
                error: Some(e.to_string()),
            },
        });
    }
    out
}

/// A parsed user formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub source: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(f64),
    Var(String),
    Neg(Box<Node>),
    Bin(char, Box<Node>, Box<Node>),
}

impl Expr {
    /// Parse; every identifier must be one of `known`.
    pub fn parse(source: &str, known: &[&str]) -> Result<Expr, ExprError> {
        if source.chars().count() > MAX_LEN {
            return Err(ExprError::TooLong);
        }
        let tokens = tokenize(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let node = p.expr()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(ExprError::Unexpected {
                token: t.to_string(),
                expr: source.to_string(),
            });
        }
        let mut vars = Vec::new();
        collect_vars(&node, &mut vars);
        if let Some(v) = vars.iter().find(|v| !known.contains(&v.as_str())) {
            return Err(ExprError::UnknownName {
                name: v.clone(),
                expr: source.to_string(),
                known: known.join(", "),
            });
        }
        Ok(Expr {
            source: source.to_string(),
            node,
        })
    }

    pub fn eval(&self, var: &dyn Fn(&str) -> Option<f64>) -> Result<f64, ExprError> {
        eval(&self.node, var)
    }

    /// Refuse a divisor that is zero whatever the run measures: one made of
    /// numbers and the `constants` alone (names only a run gives are None).
    pub fn check_divisors(&self, constants: &dyn Fn(&str) -> Option<f64>) -> Result<(), ExprError> {
        zero_divisor(&self.node, constants)
    }
}

fn zero_divisor(n: &Node, constants: &dyn Fn(&str) -> Option<f64>) -> Result<(), ExprError> {
    match n {
        Node::Num(_) | Node::Var(_) => Ok(()),
        Node::Neg(a) => zero_divisor(a, constants),
        Node::Bin(op, a, b) => {
            zero_divisor(a, constants)?;
            zero_divisor(b, constants)?;
            match eval(b, constants) {
                Ok(v) if *op == '/' && v == 0.0 => Err(ExprError::ZeroDivisor),
                _ => Ok(()),
            }
        }
    }
}

fn collect_vars(n: &Node, out: &mut Vec<String>) {
    match n {
        Node::Num(_) => {}
        Node::Var(v) => out.push(v.clone()),
        Node::Neg(a) => collect_vars(a, out),
        Node::Bin(_, a, b) => {
            collect_vars(a, out);
            collect_vars(b, out);
        }
    }
}

fn eval(n: &Node, var: &dyn Fn(&str) -> Option<f64>) -> Result<f64, ExprError> {
    Ok(match n {
        Node::Num(v) => *v,
        Node::Var(name) => var(name).ok_or_else(|| ExprError::NoValue(name.clone()))?,
        Node::Neg(a) => -eval(a, var)?,
        Node::Bin(op, a, b) => {
            let (a, b) = (eval(a, var)?, eval(b, var)?);
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ if b == 0.0 => return Err(ExprError::DivisionByZero),
                _ => a / b,
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Op(char),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Num(v) => write!(f, "{v}"),
            Token::Ident(name) => write!(f, "{name:?}"),
            Token::Op(c) => write!(f, "'{c}'"),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            // Milli precision keeps factors like 1.5 exact and quantities like 14Gi in range.
            let milli = units::parse_quantity_scaled(&text, 3)?;
            out.push(Token::Num(milli as f64 / 1000.0));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            return Err(ExprError::Unexpected {
                token: format!("{c:?}"),
                expr: s.to_string(),
            });
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Parentheses and signs open around the current token.
    depth: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn binary(
        &mut self,
        ops: &str,
        next: fn(&mut Parser) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        while let Some(op) = self.peek_op().filter(|o| ops.contains(*o)) {
            self.pos += 1;
            left = Node::Bin(op, Box::new(left), Box::new(next(self)?));
        }
        Ok(left)
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        self.binary("+-", Parser::term)
    }

    fn term(&mut self) -> Result<Node, ExprError> {
        self.binary("*/", Parser::factor)
    }

    fn factor(&mut self) -> Result<Node, ExprError> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or(ExprError::EndsEarly)?;
        self.pos += 1;
        if !matches!(t, Token::Op('-' | '(')) {
            return self.nested(t);
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::TooDeep);
        }
        let node = self.nested(t);
        self.depth -= 1;
        node
    }

    fn nested(&mut self, t: Token) -> Result<Node, ExprError> {
        match t {
            Token::Num(v) => Ok(Node::Num(v)),
            Token::Ident(name) => Ok(Node::Var(name)),
            Token::Op('-') => Ok(Node::Neg(Box::new(self.factor()?))),
            Token::Op('(') => {
                let inner = self.expr()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Op(')')) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(ExprError::MissingParen),
                }
            }
            Token::Op(c) => Err(ExprError::Unexpected {
                token: format!("{c:?}"),
                expr: String::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            min_safe_bytes: 1000 << 20,
            peak_bytes: 900 << 20,
            p90_bytes: 800 << 20,
            oom_limit_bytes: Some(990 << 20),
            vars: vec![("model".into(), 14.0 * GI)],
            user: vec![],
        }
    }

    fn get<'a>(c: &'a [FormulaCheck], name: &str) -> &'a FormulaCheck {
        c.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn builtin_rules_by_hand() {
        let c = check_all(&inputs());
        // 14Gi x 1.5 + 4Gi = 25Gi.
        assert_eq!(get(&c, "dual-residency").recommended_bytes, 25 << 30);
        assert_eq!(get(&c, "dual-residency").fit, Fit::Wasteful);
        // 900Mi x 1.3 = 1170Mi: 17% over 1000Mi.
        assert_eq!(get(&c, "peak+30%").recommended_bytes, 1170 << 20);
        assert!((get(&c, "peak+30%").margin - 0.17).abs() < 1e-9);
        assert_eq!(get(&c, "peak+30%").fit, Fit::Fine);
        // 800Mi x 1.15 = 920Mi < 1000Mi: unsafe.
        assert_eq!(get(&c, "vpa-target").recommended_bytes, 920 << 20);
        assert_eq!(get(&c, "vpa-target").fit, Fit::Unsafe);
        // max(900+100, 900x1.2=1080) = 1080Mi.
        assert_eq!(get(&c, "vpa-oom-bump").recommended_bytes, 1080 << 20);
        // 900 x 1.15 = 1035Mi: 3.5% over: tight.
        assert_eq!(get(&c, "krr-simple").fit, Fit::Tight);
        // 990 x 1.25 = 1237.5Mi.
        assert_eq!(
            get(&c, "krr-simple-oom").recommended_bytes,
            (1237.5 * MI) as u64
        );
        assert!(
            c.iter().all(|f| !f.name.starts_with("jvm")),
            "no runtime configured"
        );
    }

    #[test]
    fn runtime_rules_when_configured() {
        let mut i = inputs();
        i.vars.push(("jvm_heap".into(), 700.0 * MI));
        let c = check_all(&i);
        assert_eq!(get(&c, "jvm-heap-70%").recommended_bytes, 1000 << 20);
        assert_eq!(get(&c, "jvm-heap-70%").fit, Fit::Tight);
    }

    #[test]
    fn user_expressions() {
        let known = ["model", "peak"];
        let e = Expr::parse("model * 1.5 + 4Gi", &known).unwrap();
        assert_eq!(
            e.eval(&|n| (n == "model").then_some(14.0 * GI)).unwrap(),
            25.0 * GI
        );
        let e = Expr::parse("(peak + 100Mi) * 2 - -1", &known).unwrap();
        assert_eq!(e.eval(&|_| Some(0.0)).unwrap(), 200.0 * MI + 1.0);
        assert!(
            Expr::parse("modle * 2", &known)
                .unwrap_err()
                .to_string()
                .contains("unknown name \"modle\"")
        );
        assert!(Expr::parse("model * ", &known).is_err());
        assert!(Expr::parse("(model", &known).is_err());
        assert!(Expr::parse("model $ 2", &known).is_err());
        assert!(Expr::parse("12Qi", &known).is_err());
        // Hostile nesting is refused before it can overflow the stack.
        let deep = format!("{}model{}", "(".repeat(20_000), ")".repeat(20_000));
        assert_eq!(Expr::parse(&deep, &known), Err(ExprError::TooLong));
        let signs = format!("{}model", "-".repeat(100_000));
        assert_eq!(Expr::parse(&signs, &known), Err(ExprError::TooLong));
        let parens = format!("{}model{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(Expr::parse(&parens, &known), Err(ExprError::TooDeep));
        let ok = format!("{}model{}", "(".repeat(16), ")".repeat(16));
        assert!(Expr::parse(&format!("{ok} + -{ok}"), &known).is_ok());
        let zero = |e: &str| Expr::parse(e, &known).unwrap().check_divisors(&|_| None);
        assert_eq!(zero("peak / 0"), Err(ExprError::ZeroDivisor));
        assert_eq!(zero("peak / (2 - 2)"), Err(ExprError::ZeroDivisor));
        assert_eq!(zero("peak / (peak - 1)"), Ok(()), "only a run knows");
        let with_model = Expr::parse("peak / (model - 1Gi)", &known).unwrap();
        assert_eq!(
            with_model.check_divisors(&|n| (n == "model").then_some(GI)),
            Err(ExprError::ZeroDivisor)
        );
        let chain = vec!["model"; 120].join(" + ");
        assert!(Expr::parse(&chain, &known).is_ok(), "long flat sums parse");
        let mut i = inputs();
        i.user.push((
            "mine".into(),
            Expr::parse("peak * 2", &BUILTIN_VARS).unwrap(),
        ));
        assert_eq!(get(&check_all(&i), "mine").recommended_bytes, 1800 << 20);
        // One that cannot be evaluated in this run is reported, not dropped.
        i.user.push((
            "needs-oom".into(),
            Expr::parse("oom_limit * 1.1", &BUILTIN_VARS).unwrap(),
        ));
        i.oom_limit_bytes = None;
        let failed = get(&check_all(&i), "needs-oom").clone();
        assert_eq!(failed.fit, Fit::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("oom_limit has no value in this run")
        );
    }
}
