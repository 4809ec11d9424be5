//! `raise`: `{ error: … }`, an error definition or the name of one in `use.errors`.

use super::components;
use super::{check_fields, child, map, required, Invalid, Loader};
use crate::expr::Scope;
use crate::model::ErrorSpec;
use serde_json::Value;
use std::sync::Arc;

impl Loader<'_> {
    /// `raise`: `{ error: <error> | <name of a use.errors entry> }`.
    pub(super) fn raise(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Arc<ErrorSpec>, Invalid> {
        let fields = map(value, pointer, "`raise`")?;
        check_fields(fields, pointer, "`raise`", &["error"])?;
        let at = child(pointer, "error");
        match required(fields, pointer, "error")? {
            Value::String(name) => {
                let (error, uses_task) = self.components.errors.get(name).ok_or_else(|| {
                    Invalid::new(
                        &at,
                        format!(
                            "there is no error named `{name}` in `use.errors` ({})",
                            components::names(&self.components.errors)
                        ),
                    )
                })?;
                self.note(*uses_task);
                Ok(error.clone())
            }
            definition => Ok(Arc::new(components::error(self, definition, &at, scope)?)),
        }
    }
}
