//! The data flow fields of a task and of the workflow: `input` (`schema`, `from`), `output`
//! and `export` (`as`, `schema`); the transforms are an expression or a map of expressions.

use super::{check_fields, child, describe, map, Invalid, Loader};
use crate::expr::{Position, Scope, Template};
use crate::model::{DataIn, DataOut};
use crate::schema::Schema;
use serde_json::Value;

impl Loader<'_> {
    /// `input`: `schema`, then `from`.
    pub(super) fn data_in(
        &self,
        value: Option<&Value>,
        pointer: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<DataIn, Invalid> {
        let Some(value) = value else {
            return Ok(DataIn::default());
        };
        let fields = map(value, pointer, "`input`")?;
        check_fields(fields, pointer, "`input`", &["schema", "from"])?;
        Ok(DataIn {
            schema: match fields.get("schema") {
                Some(schema) => Some(Schema::compile(schema, &child(pointer, "schema"))?),
                None => None,
            },
            from: self.transform(
                fields.get("from"),
                &child(pointer, "from"),
                "from",
                position,
                scope,
            )?,
        })
    }

    /// `output` (`as`, `schema`) or `export` (`as`, `schema`).
    pub(super) fn data_out(
        &self,
        value: Option<&Value>,
        pointer: &str,
        field: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<DataOut, Invalid> {
        let Some(value) = value else {
            return Ok(DataOut::default());
        };
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        let what = format!("`{name}`");
        let fields = map(value, pointer, &what)?;
        check_fields(fields, pointer, &what, &["schema", field])?;
        Ok(DataOut {
            as_: self.transform(
                fields.get(field),
                &child(pointer, field),
                field,
                position,
                scope,
            )?,
            schema: match fields.get("schema") {
                Some(schema) => Some(Schema::compile(schema, &child(pointer, "schema"))?),
                None => None,
            },
        })
    }

    /// `input.from`, `output.as` or `export.as`: an expression, or a map of expressions.
    fn transform(
        &self,
        value: Option<&Value>,
        pointer: &str,
        field: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<Option<Template>, Invalid> {
        match value {
            None => Ok(None),
            Some(Value::String(code)) => {
                Ok(Some(Template::Expr(self.expr(code, position, scope, pointer)?)))
            }
            Some(value @ Value::Object(_)) => {
                Ok(Some(self.template(value, position, scope, pointer)?))
            }
            Some(other) => Err(Invalid::new(
                pointer,
                format!(
                    "`{field}` must be a runtime expression (a string) or a map whose `${{ … }}` values are evaluated; found {}",
                    describe(other)
                ),
            )),
        }
    }
}
