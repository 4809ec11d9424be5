//! `for`: iterates over the list `in` produces (null is none), with `$<each>` and `$<at>` in
//! scope; `while` is checked before each iteration, and the iterations chain (each one's
//! output is the next one's input).

use super::{expression_error, truthy, Frame, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::model::For;
use crate::value::truncate;
use jaq_json::Val;
use std::sync::Arc;

impl<'r> Runner<'r> {
    /// `for`: the iterations, chained.
    pub(super) async fn for_(
        &self,
        for_: &'r For,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, bool), Stop> {
        let collection = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                for_.collection.eval(input.clone(), args)
            })
            .map_err(|e| expression_error(instance, e))?;
        let items: Vec<Val> = match collection {
            Val::Arr(items) => Arc::unwrap_or_clone(items),
            Val::Null => Vec::new(),
            other => {
                return Err(Stop::Fault(WorkflowError::expression(
                    instance,
                    format!(
                        "{}: `for.in` must produce a list to iterate over; it produced {}",
                        for_.collection.pointer(),
                        truncate(&other.to_string(), 60)
                    ),
                )))
            }
        };
        let mut locals = Vec::with_capacity(for_.scope_len.max(frame.locals.len() + 2));
        locals.extend_from_slice(frame.locals);
        locals.push(Val::Null);
        locals.push(Val::Null);
        let (item_slot, index_slot) = (locals.len() - 2, locals.len() - 1);
        let mut data = input.clone();
        for (index, item) in items.into_iter().enumerate() {
            locals[item_slot] = item;
            locals[index_slot] = Val::from(index);
            if let Some(while_) = &for_.while_ {
                let verdict = self
                    .eval(&data, &NULL, descriptor, &locals, |args| {
                        while_.eval(data.clone(), args)
                    })
                    .map_err(|e| expression_error(instance, e))?;
                if !truthy(&verdict) {
                    break;
                }
            }
            let inner = Frame {
                locals: &locals,
                ..frame
            };
            let (output, ended) = self.list(&for_.tasks, data, inner).await?;
            data = output;
            if ended {
                return Ok((data, true));
            }
        }
        Ok((data, false))
    }
}
