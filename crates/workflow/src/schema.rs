//! `input.schema`, `output.schema` and `export.schema`: a small JSON Schema validator, compiled
//! at load.
//!
//! It covers the keywords data contracts use — `type`, `enum`, `const`, `properties`,
//! `required`, `additionalProperties`, `min/maxProperties`, `dependentRequired`, `items`,
//! `prefixItems`, `contains`, `min/maxItems`, `uniqueItems`, `minimum`, `maximum`,
//! `exclusiveMinimum`/`exclusiveMaximum` (numbers, or draft-4 booleans), `multipleOf`,
//! `min/maxLength`, `pattern`, `allOf`, `anyOf`, `oneOf`, `not`, and `$ref` to `#`,
//! `#/$defs/…` or `#/definitions/…`. Annotations (`title`, `format`, `default`, …) are
//! ignored. Any other keyword that would constrain data is a load error, so a schema is never
//! silently half-enforced. (A full validator crate would add a regex engine and a resolver
//! to the binary; workflows need this much.)

use super::error::{child, Invalid};
use regex_bites::Regex;
use serde_json::{Map, Value};

/// Keywords that only annotate: accepted and ignored.
const ANNOTATIONS: [&str; 15] = [
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// A compiled schema: the root and the definitions its `$ref`s point to.
pub(crate) struct Schema {
    /// Index 0 is the root; the rest are `$defs`/`definitions` entries.
    nodes: Vec<Node>,
}

/// One (sub)schema.
enum Node {
    /// `true` accepts everything, `false` nothing.
    Bool(bool),
    /// A schema object.
    Rules(Box<Rules>),
}

#[derive(Default)]
struct Rules {
    reference: Option<usize>,
    types: Option<Vec<Type>>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    additional: Option<Node>,
    min_properties: Option<usize>,
    max_properties: Option<usize>,
    dependent_required: Vec<(String, Vec<String>)>,
    items: Option<Node>,
    prefix_items: Vec<Node>,
    contains: Option<Node>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    unique_items: bool,
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
    multiple_of: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<(Regex, String)>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "string" => Type::String,
            "array" => Type::Array,
            "object" => Type::Object,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Boolean => "boolean",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::String => "string",
            Type::Array => "array",
            Type::Object => "object",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (Type::Null, Value::Null)
            | (Type::Boolean, Value::Bool(_))
            | (Type::Number, Value::Number(_))
            | (Type::String, Value::String(_))
            | (Type::Array, Value::Array(_))
            | (Type::Object, Value::Object(_)) => true,
            (Type::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// The JSON type name of a value, for messages.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Schema {
    /// Compiles a DSL `schema` object (`format`, `document` | `resource`) found at `pointer`.
    pub(crate) fn compile(value: &Value, pointer: &str) -> Result<Schema, Invalid> {
        let Value::Object(fields) = value else {
            return Err(Invalid::new(
                pointer,
                "`schema` must be a map with `format: json` and a `document`",
            ));
        };
        if let Some(key) = fields
            .keys()
            .find(|key| !matches!(key.as_str(), "format" | "document" | "resource"))
        {
            return Err(Invalid::new(
                &child(pointer, key),
                format!("unknown field `{key}` in `schema`; allowed: format, document, resource"),
            ));
        }
        match fields.get("format").map(|f| (f, f.as_str())) {
            None => {}
            Some((_, Some(format))) if format == "json" || format.starts_with("json:") => {}
            Some((format, _)) => {
                return Err(Invalid::new(
                    &child(pointer, "format"),
                    format!(
                        "schema format {format} is not supported; this runtime validates `json` (JSON Schema) only"
                    ),
                ))
            }
        }
        if fields.contains_key("resource") {
            return Err(Invalid::new(
                &child(pointer, "resource"),
                "schemas fetched from a `resource` are not supported: this runtime loads everything at init without network access; inline the schema as `document`",
            ));
        }
        let Some(document) = fields.get("document") else {
            return Err(Invalid::new(
                pointer,
                "`schema` needs a `document` (the inline JSON Schema)",
            ));
        };
        Self::compile_document(document, &child(pointer, "document"))
    }

    /// Compiles a JSON Schema document.
    pub(crate) fn compile_document(document: &Value, pointer: &str) -> Result<Schema, Invalid> {
        let mut names: Vec<(String, &Value, String)> = Vec::new();
        if let Value::Object(root) = document {
            for defs in ["$defs", "definitions"] {
                if let Some(entries) = root.get(defs) {
                    let Value::Object(entries) = entries else {
                        return Err(Invalid::new(
                            &child(pointer, defs),
                            format!("`{defs}` must be a map of schemas"),
                        ));
                    };
                    for (name, schema) in entries {
                        let at = child(&child(pointer, defs), name);
                        names.push((format!("#/{defs}/{name}"), schema, at));
                    }
                }
            }
        }
        let refs: Vec<&str> = names.iter().map(|(name, _, _)| name.as_str()).collect();
        let compiler = Compiler { refs: &refs };
        let mut nodes = vec![compiler.node(document, pointer, true)?];
        for (_, schema, at) in &names {
            nodes.push(compiler.node(schema, at, false)?);
        }
        Ok(Schema { nodes })
    }

    /// Validates `value`; the error says where in the value and what is wrong.
    pub(crate) fn validate(&self, value: &Value) -> Result<(), String> {
        let mut path = String::new();
        self.check(&self.nodes[0], value, &mut path, 0)
    }

    fn check(
        &self,
        node: &Node,
        value: &Value,
        path: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        let at = |path: &str| {
            if path.is_empty() {
                "the value".to_owned()
            } else {
                format!("`{path}`")
            }
        };
        if depth > 64 {
            return Err(format!(
                "{}: the schema recurses too deeply for this value",
                at(path)
            ));
        }
        let rules = match node {
            Node::Bool(true) => return Ok(()),
            Node::Bool(false) => return Err(format!("{} is not allowed here", at(path))),
            Node::Rules(rules) => rules,
        };
        if let Some(index) = rules.reference {
            if let Some(target) = self.nodes.get(index) {
                self.check(target, value, path, depth + 1)?;
            }
        }
        if let Some(types) = &rules.types {
            if !types.iter().any(|t| t.matches(value)) {
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                return Err(format!(
                    "{} must be of type {}, found {}",
                    at(path),
                    names.join(" or "),
                    type_of(value)
                ));
            }
        }
        if let Some(constant) = &rules.constant {
            if !json_equal(constant, value) {
                return Err(format!("{} must equal {constant}", at(path)));
            }
        }
        if let Some(options) = &rules.enumeration {
            if !options.iter().any(|option| json_equal(option, value)) {
                let list: Vec<String> = options.iter().map(ToString::to_string).collect();
                return Err(format!("{} must be one of {}", at(path), list.join(", ")));
            }
        }
        match value {
            Value::Object(map) => self.check_object(rules, map, path, depth)?,
            Value::Array(items) => self.check_array(rules, items, path, depth)?,
            Value::String(text) => {
                let length = text.chars().count();
                if rules.min_length.is_some_and(|min| length < min) {
                    return Err(format!(
                        "{} is shorter than {} characters",
                        at(path),
                        rules.min_length.unwrap_or(0)
                    ));
                }
                if rules.max_length.is_some_and(|max| length > max) {
                    return Err(format!(
                        "{} is longer than {} characters",
                        at(path),
                        rules.max_length.unwrap_or(0)
                    ));
                }
                if let Some((regex, source)) = &rules.pattern {
                    if !regex.is_match(text) {
                        return Err(format!(
                            "{} does not match the pattern `{source}`",
                            at(path)
                        ));
                    }
                }
            }
            Value::Number(number) => {
                let n = number.as_f64().unwrap_or(f64::NAN);
                if let Some((min, exclusive)) = rules.minimum {
                    if n < min || (exclusive && n == min) {
                        let relation = if exclusive {
                            "greater than"
                        } else {
                            "at least"
                        };
                        return Err(format!("{} must be {relation} {min}", at(path)));
                    }
                }
                if let Some((max, exclusive)) = rules.maximum {
                    if n > max || (exclusive && n == max) {
                        let relation = if exclusive { "less than" } else { "at most" };
                        return Err(format!("{} must be {relation} {max}", at(path)));
                    }
                }
                if let Some(divisor) = rules.multiple_of {
                    let quotient = n / divisor;
                    if (quotient - quotient.round()).abs() > 1e-9 {
                        return Err(format!("{} must be a multiple of {divisor}", at(path)));
                    }
                }
            }
            _ => {}
        }
        for node in &rules.all_of {
            self.check(node, value, path, depth + 1)?;
        }
        if !rules.any_of.is_empty()
            && !rules.any_of.iter().any(|node| {
                self.check(node, value, &mut path.clone(), depth + 1)
                    .is_ok()
            })
        {
            return Err(format!("{} matches none of the `anyOf` schemas", at(path)));
        }
        if !rules.one_of.is_empty() {
            let matching = rules
                .one_of
                .iter()
                .filter(|node| {
                    self.check(node, value, &mut path.clone(), depth + 1)
                        .is_ok()
                })
                .count();
            if matching != 1 {
                return Err(format!(
                    "{} must match exactly one of the `oneOf` schemas; it matches {matching}",
                    at(path)
                ));
            }
        }
        if let Some(not) = &rules.not {
            if self.check(not, value, &mut path.clone(), depth + 1).is_ok() {
                return Err(format!("{} must not match the `not` schema", at(path)));
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        rules: &Rules,
        map: &Map<String, Value>,
        path: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        let here = if path.is_empty() {
            "the object".to_owned()
        } else {
            format!("`{path}`")
        };
        if let Some(missing) = rules.required.iter().find(|key| !map.contains_key(*key)) {
            return Err(format!(
                "{here} is missing the required property `{missing}`"
            ));
        }
        if rules.min_properties.is_some_and(|min| map.len() < min) {
            return Err(format!(
                "{here} has fewer than {} properties",
                rules.min_properties.unwrap_or(0)
            ));
        }
        if rules.max_properties.is_some_and(|max| map.len() > max) {
            return Err(format!(
                "{here} has more than {} properties",
                rules.max_properties.unwrap_or(0)
            ));
        }
        for (key, needs) in &rules.dependent_required {
            if map.contains_key(key) {
                if let Some(missing) = needs.iter().find(|need| !map.contains_key(*need)) {
                    return Err(format!(
                        "{here} has `{key}` but not `{missing}`, which it requires"
                    ));
                }
            }
        }
        for (key, value) in map {
            let node = match rules.properties.iter().find(|(name, _)| name == key) {
                Some((_, node)) => node,
                None => match &rules.additional {
                    Some(Node::Bool(false)) => {
                        return Err(format!(
                            "{here} has the property `{key}`, which the schema does not allow"
                        ));
                    }
                    Some(node) => node,
                    None => continue,
                },
            };
            let length = path.len();
            path.push('/');
            path.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let result = self.check(node, value, path, depth + 1);
            path.truncate(length);
            result?;
        }
        Ok(())
    }

    fn check_array(
        &self,
        rules: &Rules,
        items: &[Value],
        path: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        let here = if path.is_empty() {
            "the array".to_owned()
        } else {
            format!("`{path}`")
        };
        if rules.min_items.is_some_and(|min| items.len() < min) {
            return Err(format!(
                "{here} has fewer than {} items",
                rules.min_items.unwrap_or(0)
            ));
        }
        if rules.max_items.is_some_and(|max| items.len() > max) {
            return Err(format!(
                "{here} has more than {} items",
                rules.max_items.unwrap_or(0)
            ));
        }
        if rules.unique_items {
            for (i, item) in items.iter().enumerate() {
                if items[..i].iter().any(|other| json_equal(other, item)) {
                    return Err(format!("{here} has duplicate items (at index {i})"));
                }
            }
        }
        if let Some(contains) = &rules.contains {
            if !items.iter().any(|item| {
                self.check(contains, item, &mut path.clone(), depth + 1)
                    .is_ok()
            }) {
                return Err(format!("{here} has no item matching the `contains` schema"));
            }
        }
        for (index, item) in items.iter().enumerate() {
            let node = match rules.prefix_items.get(index) {
                Some(node) => node,
                None => match &rules.items {
                    Some(node) => node,
                    None => continue,
                },
            };
            let length = path.len();
            path.push('/');
            path.push_str(&index.to_string());
            let result = self.check(node, item, path, depth + 1);
            path.truncate(length);
            result?;
        }
        Ok(())
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

struct Compiler<'a> {
    /// `#/$defs/name` references; the node of `refs[i]` is `nodes[i + 1]`.
    refs: &'a [&'a str],
}

impl Compiler<'_> {
    fn node(&self, value: &Value, pointer: &str, root: bool) -> Result<Node, Invalid> {
        let fields = match value {
            Value::Bool(b) => return Ok(Node::Bool(*b)),
            Value::Object(fields) => fields,
            _ => {
                return Err(Invalid::new(
                    pointer,
                    "a JSON Schema must be a map (or `true`/`false`)",
                ))
            }
        };
        let mut rules = Rules::default();
        let at = |key: &str| child(pointer, key);
        let count = |key: &str, value: &Value| {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Invalid::new(&at(key), format!("`{key}` must be a non-negative integer"))
                })
        };
        let number = |key: &str, value: &Value| {
            value
                .as_f64()
                .ok_or_else(|| Invalid::new(&at(key), format!("`{key}` must be a number")))
        };
        let strings = |key: &str, value: &Value| -> Result<Vec<String>, Invalid> {
            value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .ok_or_else(|| Invalid::new(&at(key), format!("`{key}` must be a list of strings")))
        };
        let list = |key: &str, value: &Value| -> Result<Vec<Node>, Invalid> {
            let Value::Array(items) = value else {
                return Err(Invalid::new(
                    &at(key),
                    format!("`{key}` must be a list of schemas"),
                ));
            };
            items
                .iter()
                .enumerate()
                .map(|(i, item)| self.node(item, &child(&at(key), &i.to_string()), false))
                .collect()
        };
        let mut exclusive_min_flag = false;
        let mut exclusive_max_flag = false;
        for (key, value) in fields {
            match key.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$defs" | "definitions" if root => {}
                "$ref" => {
                    let target = value.as_str().unwrap_or_default();
                    rules.reference = if target == "#" {
                        Some(0)
                    } else {
                        Some(
                            self.refs
                                .iter()
                                .position(|r| *r == target)
                                .map(|i| i + 1)
                                .ok_or_else(|| {
                                    Invalid::new(
                                        &at(key),
                                        format!("`$ref` `{target}` does not point into this schema's `$defs`; only `#` and `#/$defs/…` (or `#/definitions/…`) references are supported"),
                                    )
                                })?,
                        )
                    };
                }
                "type" => {
                    let names: Vec<&str> = match value {
                        Value::String(name) => vec![name],
                        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    let types: Option<Vec<Type>> = names.iter().map(|n| Type::parse(n)).collect();
                    match types {
                        Some(types) if !types.is_empty() => rules.types = Some(types),
                        _ => {
                            return Err(Invalid::new(
                                &at(key),
                                "`type` must be one of null, boolean, integer, number, string, array, object (or a list of them)",
                            ))
                        }
                    }
                }
                "enum" => {
                    let Value::Array(options) = value else {
                        return Err(Invalid::new(&at(key), "`enum` must be a list"));
                    };
                    rules.enumeration = Some(options.clone());
                }
                "const" => rules.constant = Some(value.clone()),
                "properties" => {
                    let Value::Object(properties) = value else {
                        return Err(Invalid::new(&at(key), "`properties` must be a map of schemas"));
                    };
                    for (name, schema) in properties {
                        let node = self.node(schema, &child(&at(key), name), false)?;
                        rules.properties.push((name.clone(), node));
                    }
                }
                "required" => rules.required = strings(key, value)?,
                "additionalProperties" => {
                    rules.additional = Some(self.node(value, &at(key), false)?)
                }
                "minProperties" => rules.min_properties = Some(count(key, value)?),
                "maxProperties" => rules.max_properties = Some(count(key, value)?),
                "dependentRequired" => {
                    let Value::Object(entries) = value else {
                        return Err(Invalid::new(&at(key), "`dependentRequired` must be a map of string lists"));
                    };
                    for (name, needs) in entries {
                        rules.dependent_required.push((name.clone(), strings(key, needs)?));
                    }
                }
                "items" => rules.items = Some(self.node(value, &at(key), false)?),
                "prefixItems" => rules.prefix_items = list(key, value)?,
                "contains" => rules.contains = Some(self.node(value, &at(key), false)?),
                "minItems" => rules.min_items = Some(count(key, value)?),
                "maxItems" => rules.max_items = Some(count(key, value)?),
                "uniqueItems" => rules.unique_items = value.as_bool().unwrap_or(false),
                "minimum" => rules.minimum = Some((number(key, value)?, false)),
                "maximum" => rules.maximum = Some((number(key, value)?, false)),
                "exclusiveMinimum" => match value {
                    Value::Bool(flag) => exclusive_min_flag = *flag,
                    _ => {
                        let bound = number(key, value)?;
                        rules.minimum = Some(match rules.minimum {
                            Some((min, _)) if min > bound => (min, false),
                            _ => (bound, true),
                        });
                    }
                },
                "exclusiveMaximum" => match value {
                    Value::Bool(flag) => exclusive_max_flag = *flag,
                    _ => {
                        let bound = number(key, value)?;
                        rules.maximum = Some(match rules.maximum {
                            Some((max, _)) if max < bound => (max, false),
                            _ => (bound, true),
                        });
                    }
                },
                "multipleOf" => {
                    let divisor = number(key, value)?;
                    if divisor <= 0.0 {
                        return Err(Invalid::new(&at(key), "`multipleOf` must be greater than 0"));
                    }
                    rules.multiple_of = Some(divisor);
                }
                "minLength" => rules.min_length = Some(count(key, value)?),
                "maxLength" => rules.max_length = Some(count(key, value)?),
                "pattern" => {
                    let source = value.as_str().unwrap_or_default();
                    let regex = Regex::new(source).map_err(|e| {
                        Invalid::new(&at(key), format!("`pattern` is not a valid regular expression: {e}"))
                    })?;
                    rules.pattern = Some((regex, source.to_owned()));
                }
                "allOf" => rules.all_of = list(key, value)?,
                "anyOf" => rules.any_of = list(key, value)?,
                "oneOf" => rules.one_of = list(key, value)?,
                "not" => rules.not = Some(self.node(value, &at(key), false)?),
                other => {
                    return Err(Invalid::new(
                        &at(other),
                        format!("the JSON Schema keyword `{other}` is not supported by this runtime's validator; express the constraint with the supported keywords (type, properties, required, items, enum, pattern, minimum, allOf/anyOf/oneOf, $ref, …)"),
                    ))
                }
            }
        }
        if exclusive_min_flag {
            rules.minimum = rules.minimum.map(|(min, _)| (min, true));
        }
        if exclusive_max_flag {
            rules.maximum = rules.maximum.map(|(max, _)| (max, true));
        }
        Ok(Node::Rules(Box::new(rules)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(document: Value) -> Schema {
        match Schema::compile(
            &json!({ "format": "json", "document": document }),
            "/input/schema",
        ) {
            Ok(schema) => schema,
            Err(e) => panic!("{e}"),
        }
    }

    fn error(schema: &Schema, value: Value) -> String {
        match schema.validate(&value) {
            Ok(()) => panic!("{value} should be invalid"),
            Err(message) => message,
        }
    }

    #[test]
    fn validates_objects_and_nested_paths() {
        let s = schema(json!({
            "type": "object",
            "required": ["order"],
            "properties": {
                "order": {
                    "type": "object",
                    "required": ["pet"],
                    "properties": { "pet": { "type": "object", "properties": { "id": { "type": "string" } } } },
                    "additionalProperties": false
                }
            }
        }));
        assert_eq!(
            s.validate(&json!({ "order": { "pet": { "id": "7" } } })),
            Ok(())
        );
        assert_eq!(
            error(&s, json!({})),
            "the object is missing the required property `order`"
        );
        assert_eq!(
            error(&s, json!({ "order": { "pet": { "id": 7 } } })),
            "`/order/pet/id` must be of type string, found a number"
        );
        assert_eq!(
            error(&s, json!({ "order": { "pet": {}, "x": 1 } })),
            "`/order` has the property `x`, which the schema does not allow"
        );
        assert_eq!(
            error(&s, json!([])),
            "the value must be of type object, found an array"
        );
    }

    #[test]
    fn validates_scalars_arrays_and_combinators() {
        let s = schema(json!({
            "type": "array",
            "minItems": 1,
            "uniqueItems": true,
            "items": {
                "anyOf": [
                    { "type": "integer", "minimum": 0, "exclusiveMaximum": 10, "multipleOf": 2 },
                    { "type": "string", "pattern": "^[a-z]+$", "maxLength": 3 },
                    { "enum": [null, true] }
                ]
            }
        }));
        assert_eq!(s.validate(&json!([0, 8, "abc", null, true])), Ok(()));
        for bad in [
            json!([]),
            json!([10]),
            json!([3]),
            json!(["ABC"]),
            json!(["abcd"]),
            json!([1.5]),
            json!([2, 2]),
            json!([false]),
        ] {
            assert!(s.validate(&bad).is_err(), "{bad}");
        }
        let s = schema(
            json!({ "oneOf": [{ "type": "number" }, { "type": "integer" }], "not": { "const": 3.5 } }),
        );
        assert!(error(&s, json!(1)).contains("exactly one"));
        assert_eq!(s.validate(&json!(1.5)), Ok(()));
        assert!(error(&s, json!(3.5)).contains("must not match"));
    }

    #[test]
    fn resolves_local_refs_and_draft4_exclusive_flags() {
        let s = schema(json!({
            "$defs": { "node": { "type": "object", "properties": { "next": { "$ref": "#/$defs/node" }, "n": { "type": "number", "minimum": 0, "exclusiveMinimum": true } } } },
            "$ref": "#/$defs/node"
        }));
        assert_eq!(
            s.validate(&json!({ "n": 1, "next": { "next": { "n": 2 } } })),
            Ok(())
        );
        assert_eq!(
            error(&s, json!({ "next": { "next": { "n": 0 } } })),
            "`/next/next/n` must be greater than 0"
        );
    }

    #[test]
    fn unsupported_or_invalid_schemas_are_load_errors() {
        let cases = [
            (
                json!({ "format": "json", "document": { "if": {} } }),
                "/input/schema/document/if",
                "not supported",
            ),
            (
                json!({ "format": "avro", "document": {} }),
                "/input/schema/format",
                "not supported",
            ),
            (
                json!({ "format": "json", "resource": { "endpoint": "https://x" } }),
                "/input/schema/resource",
                "inline the schema",
            ),
            (
                json!({ "format": "json", "document": { "$ref": "https://x/s.json" } }),
                "/input/schema/document/$ref",
                "$defs",
            ),
            (
                json!({ "format": "json", "document": { "pattern": "(" } }),
                "/input/schema/document/pattern",
                "regular expression",
            ),
            (
                json!({ "format": "json", "document": { "type": "text" } }),
                "/input/schema/document/type",
                "must be one of",
            ),
            (
                json!({ "format": "json" }),
                "/input/schema",
                "needs a `document`",
            ),
        ];
        for (value, pointer, fragment) in cases {
            let err = Schema::compile(&value, "/input/schema")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(&format!("{pointer}: ")), "{err}");
            assert!(err.contains(fragment), "{err}");
        }
    }
}
