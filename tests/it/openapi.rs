//! A strict check of an object against the Kubernetes API server's
//! published OpenAPI v3 document (tests/k8s/): every field known to its
//! schema (as `kubectl apply --validate=strict` insists), of the schema's
//! type, int32 within range, required fields present, and apiVersion and
//! kind as the schema's group-version-kind says.

use serde_json::Value;

pub struct Schemas(serde_json::Map<String, Value>);

impl Schemas {
    /// The component schemas of the given OpenAPI documents, merged.
    pub fn load(docs: &[&str]) -> Schemas {
        let mut all = serde_json::Map::new();
        for path in docs {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let doc: Value = serde_json::from_str(&text).unwrap();
            let schemas = doc["components"]["schemas"].as_object().unwrap().clone();
            all.extend(schemas);
        }
        Schemas(all)
    }

    /// Everything wrong with `value` as a `name` (e.g. io.k8s.api.batch.v1.Job).
    pub fn check(&self, value: &Value, name: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let schema = &self.0[name];
        if let Some(gvk) = schema["x-kubernetes-group-version-kind"].get(0) {
            let group = gvk["group"].as_str().unwrap_or_default();
            let version = gvk["version"].as_str().unwrap_or_default();
            let api = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            if value["apiVersion"] != api.as_str() || value["kind"] != gvk["kind"] {
                errors.push(format!(
                    "apiVersion/kind {}/{} is not {api}/{}",
                    value["apiVersion"], value["kind"], gvk["kind"]
                ));
            }
        }
        self.walk(value, schema, "", &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let reference = schema["$ref"]
            .as_str()
            .or_else(|| schema["allOf"].get(0).and_then(|a| a["$ref"].as_str()));
        match reference {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                self.resolve(&self.0[name])
            }
            None => schema,
        }
    }

    fn walk(&self, value: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema["x-kubernetes-int-or-string"] == true {
            if !(value.is_string() || value.is_i64() || value.is_u64()) {
                errors.push(format!("{at}: {value} is neither an integer nor a string"));
            }
            return;
        }
        match schema["type"].as_str() {
            Some("object") => {
                let Some(map) = value.as_object() else {
                    errors.push(format!("{at}: {value} is not an object"));
                    return;
                };
                for req in schema["required"].as_array().into_iter().flatten() {
                    let req = req.as_str().unwrap_or_default();
                    if !map.contains_key(req) {
                        errors.push(format!("{at}: required field {req} is missing"));
                    }
                }
                for (k, v) in map {
                    let path = format!("{at}.{k}");
                    match (
                        schema["properties"].get(k),
                        schema.get("additionalProperties"),
                    ) {
                        (Some(p), _) => self.walk(v, p, &path, errors),
                        (None, Some(extra)) if extra.is_object() => {
                            self.walk(v, extra, &path, errors)
                        }
                        _ => errors.push(format!("{path}: unknown field")),
                    }
                }
            }
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, &schema["items"], &format!("{at}[{i}]"), errors);
                    }
                }
                None => errors.push(format!("{at}: {value} is not an array")),
            },
            Some("string") if !value.is_string() => {
                errors.push(format!("{at}: {value} is not a string"))
            }
            Some("boolean") if !value.is_boolean() => {
                errors.push(format!("{at}: {value} is not a boolean"))
            }
            Some("integer") => {
                let fits = match schema["format"].as_str() {
                    Some("int32") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                    _ => value.is_i64() || value.is_u64(),
                };
                if !fits {
                    errors.push(format!("{at}: {value} is not an {}", schema["format"]));
                }
            }
            _ => {}
        }
    }
}
