//! `set`: a map of the data to set (its `${ … }` values evaluated), or, as a string, one
//! runtime expression (any string in loose mode).

use super::{describe, Invalid, Loader};
use crate::expr::{strip_expression, Position, Scope, Template};
use crate::value::truncate;
use serde_json::Value;

impl Loader<'_> {
    /// The body of a `set` task: a map (its `${ … }` values evaluated) or one expression.
    pub(super) fn set(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Template, Invalid> {
        match value {
            Value::Object(fields) if fields.is_empty() => Err(Invalid::new(
                pointer,
                "`set` is empty; give it at least one property",
            )),
            Value::Object(_) => self.template(value, Position::TaskDefinition, scope, pointer),
            Value::String(_) if self.loose => {
                self.template(value, Position::TaskDefinition, scope, pointer)
            }
            Value::String(text) => match strip_expression(text) {
                Some(_) => Ok(Template::Expr(self.expr(text, Position::TaskDefinition, scope, pointer)?)),
                None => Err(Invalid::new(
                    pointer,
                    format!(
                        "`set` as a string must be a runtime expression `${{ … }}`; found `{}` — to set literal data, use a map",
                        truncate(text, 60)
                    ),
                )),
            },
            other => Err(Invalid::new(
                pointer,
                format!(
                    "`set` must be a map of the data to set, or a runtime expression `${{ … }}`; found {}",
                    describe(other)
                ),
            )),
        }
    }
}
