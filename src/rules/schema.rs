//! `rules schema`: the JSON Schema of rule files, derived from the structs serde reads them
//! with, and refined per action so editors complete and check each step's `with`.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::model::RawFile;
use super::trigger::known_types;
use crate::actions::spec::{ParamKind, ACTIONS};

/// The schema of a rule file (JSON Schema draft 2020-12).
pub fn rule_file_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<RawFile>();
    let mut schema = schema.to_value();
    schema["title"] = json!("codegen-sentinel rule file");
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        if let Some(step) = defs.get_mut("RawStep") {
            refine_step(step);
        }
        if let Some(rule) = defs.get_mut("RawRule") {
            rule["properties"]["trigger"]["examples"] = json!(known_types());
        }
    }
    schema
}

fn param_schema(kind: ParamKind) -> Value {
    let template = json!({"type": "string", "pattern": "\\{[{%]"});
    match kind {
        ParamKind::String => json!({"type": ["string", "number", "boolean"]}),
        ParamKind::Int => json!({"anyOf": [{"type": "integer"}, template]}),
        ParamKind::Bool => json!({"anyOf": [{"type": "boolean"}, template]}),
        ParamKind::StringList => {
            json!({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]})
        }
        ParamKind::Object => json!({"anyOf": [{"type": "object"}, template]}),
        ParamKind::Duration => json!({"type": "string"}),
        ParamKind::Any => json!({}),
    }
}

/// `action` takes the catalogue's names; `with` is checked per action.
fn refine_step(step: &mut Value) {
    let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
    step["properties"]["action"]["enum"] = json!(names);
    let cases: Vec<Value> = ACTIONS
        .iter()
        .map(|action| {
            let mut properties = Map::new();
            for param in action.params {
                let mut p = param_schema(param.kind);
                p["description"] = json!(param.doc);
                properties.insert(param.name.to_owned(), p);
            }
            let required: Vec<&str> = action
                .params
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name)
                .collect();
            let mut with =
                json!({"type": "object", "properties": properties, "additionalProperties": false});
            if !required.is_empty() {
                with["required"] = json!(required);
            }
            let mut then = json!({"properties": {"with": with}});
            if !required.is_empty() {
                then["required"] = json!(["with"]);
            }
            json!({
                "if": {"properties": {"action": {"const": action.name}}, "required": ["action"]},
                "then": then,
            })
        })
        .collect();
    step["allOf"] = Value::Array(cases);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_actions_and_their_parameters() {
        let schema = rule_file_schema();
        let step = &schema["$defs"]["RawStep"];
        assert!(step["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("notify")));
        let cases = step["allOf"].as_array().unwrap();
        assert_eq!(cases.len(), ACTIONS.len());
        assert!(schema["properties"]["rules"].is_object());
    }
}
