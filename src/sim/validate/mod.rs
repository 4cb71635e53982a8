//! FastAPI/pydantic-shaped request validation: path, query and body checks that collect every
//! problem into one 422 `{"detail":[{loc,msg,type,input}]}` answer.

use serde_json::{json, Map, Value};

use super::error::ApiError;

mod body;
pub(crate) use body::Body;

/// Default and bounds of the `limit` query parameter.
pub(crate) const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 100;

/// Collects validation errors for one request.
#[derive(Default)]
pub(crate) struct Checker {
    errors: Vec<Value>,
}

/// Query pairs in order; for a repeated scalar the last value wins, as in Starlette.
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Checker {
    fn push(&mut self, kind: &str, loc: Value, msg: String, input: Value, ctx: Option<Value>) {
        let mut err = json!({"type": kind, "loc": loc, "msg": msg, "input": input});
        if let (Some(ctx), Some(map)) = (ctx, err.as_object_mut()) {
            map.insert("ctx".to_owned(), ctx);
        }
        self.errors.push(err);
    }

    /// Ends validation: `Err` with every collected problem, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// An integer path parameter (0 when invalid; the request fails anyway).
    pub fn path_int(&mut self, params: &[(String, String)], name: &str) -> i64 {
        let raw = params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        self.parse_int(raw, json!(["path", name])).unwrap_or(0)
    }

    fn parse_int(&mut self, raw: &str, loc: Value) -> Option<i64> {
        match raw.trim().parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let msg = "Input should be a valid integer, unable to parse string as an integer";
                self.push("int_parsing", loc, msg.to_owned(), json!(raw), None);
                None
            }
        }
    }

    /// An optional integer query parameter with bounds.
    pub fn query_int(
        &mut self,
        q: &Query,
        name: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        let raw = q.get(name)?;
        let loc = json!(["query", name]);
        let v = self.parse_int(raw, loc.clone())?;
        self.bounds(v, json!(raw), loc, min, max)
    }

    /// A required integer query parameter.
    pub fn query_int_required(&mut self, q: &Query, name: &str) -> i64 {
        if q.get(name).is_none() {
            self.missing(json!(["query", name]), Value::Null);
            return 0;
        }
        self.query_int(q, name, None, None).unwrap_or(0)
    }

    /// A required string query parameter.
    pub fn query_str_required(&mut self, q: &Query, name: &str) -> String {
        match q.get(name) {
            Some(v) => v.to_owned(),
            None => {
                self.missing(json!(["query", name]), Value::Null);
                String::new()
            }
        }
    }

    /// `skip` (≥0, default 0) and `limit` (1..=100, default 100).
    pub fn paging(&mut self, q: &Query) -> (i64, i64) {
        let skip = self.query_int(q, "skip", Some(0), None).unwrap_or(0);
        let limit = self
            .query_int(q, "limit", Some(1), Some(MAX_LIMIT))
            .unwrap_or(DEFAULT_LIMIT);
        (skip, limit)
    }

    /// An optional boolean query parameter, with pydantic's accepted spellings.
    pub fn query_bool(&mut self, q: &Query, name: &str) -> Option<bool> {
        let raw = q.get(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
            _ => {
                let msg = "Input should be a valid boolean, unable to interpret input";
                self.push(
                    "bool_parsing",
                    json!(["query", name]),
                    msg.to_owned(),
                    json!(raw),
                    None,
                );
                None
            }
        }
    }

    /// An optional query parameter restricted to an enum's values.
    pub fn query_enum(&mut self, q: &Query, name: &str, allowed: &[&str]) -> Option<String> {
        let raw = q.get(name)?;
        self.one_of(json!(raw), json!(["query", name]), allowed, "enum")
    }

    fn one_of(&mut self, input: Value, loc: Value, allowed: &[&str], kind: &str) -> Option<String> {
        if let Some(s) = input.as_str().filter(|s| allowed.contains(s)) {
            return Some(s.to_owned());
        }
        let expected = expected_list(allowed);
        let msg = format!("Input should be {expected}");
        self.push(kind, loc, msg, input, Some(json!({ "expected": expected })));
        None
    }

    fn bounds(
        &mut self,
        v: i64,
        input: Value,
        loc: Value,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        if let Some(min) = min.filter(|m| v < *m) {
            let msg = format!("Input should be greater than or equal to {min}");
            self.push(
                "greater_than_equal",
                loc,
                msg,
                input,
                Some(json!({"ge": min})),
            );
            return None;
        }
        if let Some(max) = max.filter(|m| v > *m) {
            let msg = format!("Input should be less than or equal to {max}");
            self.push("less_than_equal", loc, msg, input, Some(json!({"le": max})));
            return None;
        }
        Some(v)
    }

    fn missing(&mut self, loc: Value, input: Value) {
        self.push("missing", loc, "Field required".to_owned(), input, None);
    }

    /// The JSON body as an object; records `missing`, `json_invalid` or
    /// `model_attributes_type` otherwise.
    pub fn body_object(&mut self, raw: &[u8]) -> Option<Map<String, Value>> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            self.missing(json!(["body"]), Value::Null);
            return None;
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(map)) => Some(map),
            Ok(other) => {
                let msg = "Input should be a valid dictionary or object to extract fields from";
                self.push(
                    "model_attributes_type",
                    json!(["body"]),
                    msg.to_owned(),
                    other,
                    None,
                );
                None
            }
            Err(e) => {
                let loc = json!(["body", e.column()]);
                let ctx = json!({"error": e.to_string()});
                self.push(
                    "json_invalid",
                    loc,
                    "JSON decode error".to_owned(),
                    json!({}),
                    Some(ctx),
                );
                None
            }
        }
    }
}

/// pydantic's `'a', 'b' or 'c'`.
fn expected_list(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_collects_every_error() {
        let mut c = Checker::default();
        let q = Query::parse(Some("skip=-1&limit=101"));
        assert_eq!(c.paging(&q), (0, DEFAULT_LIMIT));
        let Err(ApiError::Validation(errors)) = c.finish() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0]["loc"], json!(["query", "skip"]));
        assert_eq!(errors[0]["type"], "greater_than_equal");
        assert_eq!(
            errors[1]["msg"],
            "Input should be less than or equal to 100"
        );
    }

    #[test]
    fn missing_body_field_and_bad_enum() {
        let mut c = Checker::default();
        let obj = c.body_object(br#"{"state": "merged"}"#).unwrap_or_default();
        let mut body = Body {
            obj: &obj,
            checker: &mut c,
        };
        let allowed = ["open", "closed", "draft", "ready_for_review"];
        assert_eq!(body.choice("state", true, &allowed, "enum"), None);
        assert_eq!(body.int("agent_run_id", true), None);
        let Err(ApiError::Validation(errors)) = c.finish() else {
            panic!("expected a validation error");
        };
        assert_eq!(
            errors[0]["msg"],
            "Input should be 'open', 'closed', 'draft' or 'ready_for_review'"
        );
        assert_eq!(errors[1]["type"], "missing");
        assert_eq!(errors[1]["loc"], json!(["body", "agent_run_id"]));
    }

    #[test]
    fn empty_and_invalid_bodies() {
        let mut c = Checker::default();
        assert!(c.body_object(b"").is_none());
        assert!(c.body_object(b"{nope").is_none());
        assert!(c.body_object(b"[1]").is_none());
        let Err(ApiError::Validation(errors)) = c.finish() else {
            panic!("expected a validation error");
        };
        let kinds: Vec<&str> = errors.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(kinds, ["missing", "json_invalid", "model_attributes_type"]);
    }
}
