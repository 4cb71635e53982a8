//! Field checks on a JSON request body, with pydantic's lax integers and strict strings.

use serde_json::{json, Map, Value};

use super::Checker;

/// Field checks on a body object; the field is `required` or optional-and-nullable.
pub(crate) struct Body<'a> {
    pub obj: &'a Map<String, Value>,
    pub checker: &'a mut Checker,
}

impl Body<'_> {
    fn present(&mut self, name: &str, required: bool) -> Option<&Value> {
        match self.obj.get(name) {
            None if required => {
                let input = Value::Object(self.obj.clone());
                self.checker.missing(json!(["body", name]), input);
                None
            }
            None | Some(Value::Null) if !required => None,
            other => other,
        }
    }

    /// An integer field; numeric strings and integral floats pass, as in pydantic's lax mode.
    pub fn int(&mut self, name: &str, required: bool) -> Option<i64> {
        let value = self.present(name, required)?.clone();
        let loc = json!(["body", name]);
        let parsed = match &value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => {
                return self.checker.parse_int(s, loc);
            }
            _ => None,
        };
        if parsed.is_none() {
            let msg = "Input should be a valid integer".to_owned();
            self.checker.push("int_type", loc, msg, value, None);
        }
        parsed
    }

    /// A required string that must not be blank (pydantic `min_length=1`).
    pub fn nonempty_string(&mut self, name: &str) -> Option<String> {
        let s = self.string(name, true)?;
        if s.trim().is_empty() {
            let msg = "String should have at least 1 character".to_owned();
            let ctx = Some(json!({"min_length": 1}));
            self.checker.push(
                "string_too_short",
                json!(["body", name]),
                msg,
                json!(s),
                ctx,
            );
            return None;
        }
        Some(s)
    }

    /// An integer field with bounds.
    pub fn int_in(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.int(name, false)?;
        let input = json!(v);
        self.checker
            .bounds(v, input, json!(["body", name]), Some(min), Some(max))
    }

    /// A string field (no coercion from other types).
    pub fn string(&mut self, name: &str, required: bool) -> Option<String> {
        let value = self.present(name, required)?.clone();
        match value {
            Value::String(s) => Some(s),
            other => {
                let msg = "Input should be a valid string".to_owned();
                self.checker
                    .push("string_type", json!(["body", name]), msg, other, None);
                None
            }
        }
    }

    /// A string field restricted to `allowed`; `kind` is `enum` or `literal_error`.
    pub fn choice(
        &mut self,
        name: &str,
        required: bool,
        allowed: &[&str],
        kind: &str,
    ) -> Option<String> {
        let value = self.present(name, required)?.clone();
        self.checker
            .one_of(value, json!(["body", name]), allowed, kind)
    }

    /// An object field (`metadata`).
    pub fn object(&mut self, name: &str) -> Option<Value> {
        let value = self.present(name, false)?.clone();
        if value.is_object() {
            return Some(value);
        }
        let msg = "Input should be a valid dictionary".to_owned();
        self.checker
            .push("dict_type", json!(["body", name]), msg, value, None);
        None
    }

    /// A list of strings.
    pub fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        let value = self.present(name, false)?.clone();
        let Value::Array(items) = value else {
            let msg = "Input should be a valid list".to_owned();
            self.checker
                .push("list_type", json!(["body", name]), msg, value, None);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => out.push(s),
                other => {
                    let msg = "Input should be a valid string".to_owned();
                    let loc = json!(["body", name, i]);
                    self.checker.push("string_type", loc, msg, other, None);
                }
            }
        }
        Some(out)
    }

    /// A map whose values must be integers (`int_values`) or strings.
    pub fn map(&mut self, name: &str, int_values: bool) -> Option<Map<String, Value>> {
        let value = self.present(name, false)?.clone();
        let Value::Object(map) = value else {
            let msg = "Input should be a valid dictionary".to_owned();
            self.checker
                .push("dict_type", json!(["body", name]), msg, value, None);
            return None;
        };
        for (k, v) in &map {
            let ok = if int_values {
                v.is_i64()
            } else {
                v.is_string()
            };
            if !ok {
                let (kind, msg) = if int_values {
                    ("int_type", "Input should be a valid integer")
                } else {
                    ("string_type", "Input should be a valid string")
                };
                let loc = json!(["body", name, k]);
                self.checker
                    .push(kind, loc, msg.to_owned(), v.clone(), None);
            }
        }
        Some(map)
    }
}
