//! `set`: the task's output is its template (a map whose `${ … }` values are evaluated, or
//! one expression) evaluated on its input.

use super::{expression_error, Runner, Stop, NULL};
use crate::expr::Template;
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `set`: the template, evaluated.
    pub(super) fn set(
        &self,
        template: &Template,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Result<Val, Stop> {
        self.eval(input, &NULL, descriptor, locals, |args| {
            template.eval(input, args)
        })
        .map_err(|e| Stop::Fault(expression_error(instance, e)))
    }
}
