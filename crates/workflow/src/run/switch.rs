//! `switch`: the cases' `when` conditions in order; the first that holds (else the default
//! case, else none) gives the flow directive, and the task's output is its input.

use super::{truthy, Frame, Runner, NULL};
use crate::expr::EvalError;
use crate::model::{Case, Flow};
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `switch`: the flow of the first matching case, else of the default case.
    pub(super) fn switch(
        &self,
        cases: &[Case],
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Option<Flow>, EvalError> {
        let mut default = None;
        for case in cases {
            match &case.when {
                None => default = default.or(Some(case.then)),
                Some(when) => {
                    let verdict = self.eval(input, &NULL, descriptor, frame.locals, |args| {
                        when.eval(input.clone(), args)
                    })?;
                    if truthy(&verdict) {
                        return Ok(Some(case.then));
                    }
                }
            }
        }
        Ok(default)
    }
}
