//! The official Codegen spec as a validator: find an operation's schemas, check JSON against them.

use serde_json::{json, Value};

pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn load() -> Spec {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/codegen-openapi3.json"
        );
        let text = std::fs::read_to_string(path).expect("vendored spec");
        Spec {
            doc: serde_json::from_str(&text).expect("spec is JSON"),
        }
    }

    /// Every (method, path template) in the spec.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
        ops
    }

    /// The template a concrete path matches (`/v1/organizations/7/users` → `/v1/organizations/{org_id}/users`).
    pub fn template_of(&self, method: &str, path: &str) -> Option<String> {
        let concrete: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut best: Option<(usize, String)> = None;
        for (m, template) in self.operations() {
            if !m.eq_ignore_ascii_case(method) {
                continue;
            }
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != concrete.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&concrete).all(|(t, c)| {
                if t.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    t == c
                }
            });
            // Prefer the most literal match: `/agent/run/resume` over `/agent/run/{agent_run_id}`.
            if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
                best = Some((literal, template));
            }
        }
        best.map(|(_, t)| t)
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        &self.doc["paths"][template][method.to_lowercase()]
    }

    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<Value> {
        let op = self.operation(method, template);
        op["responses"][status.to_string()]["content"]["application/json"]["schema"]
            .as_object()
            .map(|o| Value::Object(o.clone()))
    }

    pub fn request_schema(&self, method: &str, template: &str) -> Option<Value> {
        let op = self.operation(method, template);
        op["requestBody"]["content"]["application/json"]["schema"]
            .as_object()
            .map(|o| Value::Object(o.clone()))
    }

    /// The declared query parameters: name → (required, schema).
    pub fn query_params(&self, method: &str, template: &str) -> Vec<(String, bool, Value)> {
        let op = self.operation(method, template);
        op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap_or_default().to_owned(),
                            p["required"].as_bool().unwrap_or(false),
                            p["schema"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks `instance` against `schema` (which may `$ref` the spec's components).
    pub fn check(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut root = self.doc.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["$defs"] = json!({ "target": schema });
        root["$ref"] = json!("#/$defs/target");
        let validator = jsonschema::draft202012::new(&root).map_err(|e| e.to_string())?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
