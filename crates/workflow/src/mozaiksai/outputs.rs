//! `structured_outputs.yaml`: MozaiksAI's pydantic-style `models` → JSON Schema, and the
//! `registry` that binds one model to each agent (its `output_schema`).
//!
//! Field types, as MozaiksAI builds its pydantic models: `str`/`string`, `int`, `float`,
//! `bool`, `dict`/`Dict` (an object), `optional_str`/`Optional[str]` (a string or null),
//! `list` (with `items`: a type or model name), `optional_list` (the same or null, default
//! null), `list[T]`, `literal` (with `values`), `union` (with `variants`: type names, model
//! names, `null`), and a model's name (the model, inlined). A field with a `default` is optional
//! (the default is kept as an annotation); every other field is required. Unknown keys are
//! allowed in the output (pydantic ignores them). A model that contains itself is rejected
//! (MozaiksAI cannot build it either).

use super::super::load::child;
use super::Place;
use serde_json::{json, Map, Value};

/// The JSON Schema of every model used by the registry, by agent name.
pub(crate) struct Outputs {
    /// agent → its output schema.
    pub(crate) by_agent: Vec<(String, Value)>,
}

/// Reads the structured outputs document (`structured_outputs:` wrapper optional).
pub(crate) fn compile(
    doc: &Value,
    at: &Place<'_>,
    agents: &[String],
) -> Result<Outputs, super::Error> {
    let (root, base) = match doc.get("structured_outputs") {
        Some(inner) => (inner, "/structured_outputs"),
        None => (doc, ""),
    };
    let root_map = at.object(root, base)?;
    at.known(root_map, base, &["models", "registry"])?;
    let empty = Map::new();
    let models = match root_map.get("models") {
        None | Some(Value::Null) => &empty,
        Some(value) => at.object(value, &format!("{base}/models"))?,
    };
    let mut by_agent = Vec::new();
    let registry = match root_map.get("registry") {
        None | Some(Value::Null) => &empty,
        Some(value) => at.object(value, &format!("{base}/registry"))?,
    };
    let builder = Builder {
        models,
        base: format!("{base}/models"),
        at,
    };
    for (agent, model) in registry {
        let pointer = child(&format!("{base}/registry"), agent);
        if !agents.iter().any(|a| a == agent) {
            return Err(at.error(
                &pointer,
                format!("the registry binds a model to {agent}, which is not an agent of agents.yaml ({})", agents.join(", ")),
            ));
        }
        let name = match model {
            Value::Null => continue,
            Value::String(name) => name,
            other => {
                return Err(at.error(
                    &pointer,
                    format!(
                        "the registry maps an agent to a model name or null; found {}",
                        kind(other)
                    ),
                ))
            }
        };
        if !models.contains_key(name) {
            return Err(at.error(
                &pointer,
                format!(
                    "agent {agent} is bound to model `{name}`, which `models` does not define (it defines: {})",
                    names(models)
                ),
            ));
        }
        by_agent.push((agent.clone(), builder.model(name, &mut Vec::new())?));
    }
    Ok(Outputs { by_agent })
}

/// The names of a map's keys, for messages.
fn names(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

struct Builder<'a> {
    models: &'a Map<String, Value>,
    base: String,
    at: &'a Place<'a>,
}

impl Builder<'_> {
    /// The schema of model `name`; `stack` holds the models being built (cycle detection).
    fn model(&self, name: &str, stack: &mut Vec<String>) -> Result<Value, super::Error> {
        let pointer = child(&self.base, name);
        if stack.iter().any(|n| n == name) {
            stack.push(name.to_owned());
            return Err(self.at.error(
                &pointer,
                format!(
                    "model {name} contains itself ({}); a structured output must be finite",
                    stack.join(" → ")
                ),
            ));
        }
        let Some(definition) = self.models.get(name) else {
            return Err(self
                .at
                .error(&pointer, format!("no model `{name}` in `models`")));
        };
        let fields = self.at.object(definition, &pointer)?;
        self.at.known(
            fields,
            &pointer,
            &["type", "description", "fields", "required"],
        )?;
        if fields.get("type").and_then(Value::as_str) != Some("model") {
            return Err(self.at.error(
                &format!("{pointer}/type"),
                "a structured output model needs `type: model`",
            ));
        }
        stack.push(name.to_owned());
        let mut properties = Map::new();
        let mut required = Vec::new();
        let empty = Map::new();
        let field_defs = match fields.get("fields") {
            None | Some(Value::Null) => &empty,
            Some(value) => self.at.object(value, &format!("{pointer}/fields"))?,
        };
        for (field, def) in field_defs {
            let fpointer = child(&format!("{pointer}/fields"), field);
            let (schema, optional) = self.field(def, &fpointer, stack)?;
            if !optional {
                required.push(Value::String(field.clone()));
            }
            properties.insert(field.clone(), schema);
        }
        stack.pop();
        let mut schema = json!({ "type": "object", "title": name, "properties": properties, "required": required });
        if let Some(description) = fields.get("description").and_then(Value::as_str) {
            schema["description"] = Value::String(description.to_owned());
        }
        Ok(schema)
    }

    /// A field's schema and whether it may be left out.
    fn field(
        &self,
        def: &Value,
        pointer: &str,
        stack: &mut Vec<String>,
    ) -> Result<(Value, bool), super::Error> {
        let map = self.at.object(def, pointer)?;
        self.at.known(
            map,
            pointer,
            &[
                "type",
                "description",
                "default",
                "items",
                "variants",
                "values",
            ],
        )?;
        let Some(type_name) = map.get("type").and_then(Value::as_str) else {
            return Err(self.at.error(pointer, "a field needs `type` (str, int, float, bool, dict, list, literal, union or a model name)"));
        };
        let type_name = type_name.trim();
        let tpointer = format!("{pointer}/type");
        let mut optional = map.contains_key("default");
        let mut schema = match type_name {
            "list" | "optional_list" => {
                let Some(items) = map.get("items").and_then(Value::as_str) else {
                    return Err(self.at.error(
                        pointer,
                        "a `list` field needs `items`: the item type or model name",
                    ));
                };
                let array = json!({ "type": "array", "items": self.named(items, &format!("{pointer}/items"), stack)? });
                if type_name == "optional_list" {
                    optional = true;
                    json!({ "anyOf": [array, { "type": "null" }], "default": null })
                } else {
                    array
                }
            }
            "literal" => {
                let values = match map.get("values") {
                    Some(Value::Array(values)) if !values.is_empty() => values.clone(),
                    _ => {
                        return Err(self.at.error(
                            pointer,
                            "a `literal` field needs `values`: a non-empty list",
                        ))
                    }
                };
                json!({ "enum": values })
            }
            "union" => {
                let variants = match map.get("variants") {
                    Some(Value::Array(variants)) if !variants.is_empty() => variants,
                    _ => {
                        return Err(self.at.error(pointer, "a `union` field needs `variants`: a non-empty list of type or model names (or null)"))
                    }
                };
                let mut any_of = Vec::new();
                let mut nullable = false;
                for (i, variant) in variants.iter().enumerate() {
                    let vpointer = format!("{pointer}/variants/{i}");
                    match variant {
                        Value::Null => nullable = true,
                        Value::String(v)
                            if matches!(
                                v.trim().to_ascii_lowercase().as_str(),
                                "null" | "none"
                            ) =>
                        {
                            nullable = true
                        }
                        Value::String(v) => {
                            let schema = self.named(v, &vpointer, stack)?;
                            if !any_of.contains(&schema) {
                                any_of.push(schema);
                            }
                        }
                        other => {
                            return Err(self.at.error(
                                &vpointer,
                                format!("a variant is a type or model name; found {}", kind(other)),
                            ))
                        }
                    }
                }
                if any_of.is_empty() {
                    return Err(self
                        .at
                        .error(pointer, "a `union` needs at least one variant besides null"));
                }
                if nullable {
                    any_of.push(json!({ "type": "null" }));
                }
                match <[Value; 1]>::try_from(any_of) {
                    Ok([only]) => only,
                    Err(any_of) => json!({ "anyOf": any_of }),
                }
            }
            other => match other
                .strip_prefix("list[")
                .and_then(|t| t.strip_suffix(']'))
            {
                Some(inner) => {
                    json!({ "type": "array", "items": self.named(inner, &tpointer, stack)? })
                }
                None => self.named(other, &tpointer, stack)?,
            },
        };
        if let Some(description) = map.get("description") {
            if let (Value::Object(schema), Value::String(text)) = (&mut schema, description) {
                schema.insert("description".into(), Value::String(text.clone()));
            }
        }
        if let (Some(default), Value::Object(schema)) = (map.get("default"), &mut schema) {
            schema.insert("default".into(), default.clone());
        }
        Ok((schema, optional))
    }

    /// The schema of a type named in `type`, `items` or `variants`: a primitive or a model.
    fn named(
        &self,
        name: &str,
        pointer: &str,
        stack: &mut Vec<String>,
    ) -> Result<Value, super::Error> {
        let name = name.trim();
        Ok(match name {
            "str" | "string" => json!({ "type": "string" }),
            "int" => json!({ "type": "integer" }),
            "float" => json!({ "type": "number" }),
            "bool" => json!({ "type": "boolean" }),
            "dict" | "Dict" => json!({ "type": "object" }),
            "list" | "List" => json!({ "type": "array" }),
            "optional_str" | "Optional[str]" => json!({ "type": ["string", "null"] }),
            model if self.models.contains_key(model) => self.model(model, stack)?,
            other => {
                return Err(self.at.error(
                    pointer,
                    format!("unknown type `{other}`: use str, int, float, bool, dict, list, optional_str, optional_list, list[T], literal, union, or a model of `models` ({})", names(self.models)),
                ))
            }
        })
    }
}
