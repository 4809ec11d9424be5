//! `try`: the tasks run, and a fault they raise is caught when it matches `catch` (`errors.with`,
//! in either spelling of the standard error types, `when`, `exceptWhen`, seen as `$<as>`);
//! with `retry` the tasks run again while the policy allows (attempt duration, backoff,
//! jitter, limits), and then `catch.do` handles the error.

use super::{expression_error, later, truthy, Frame, Owner, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::expr::EvalError;
use crate::model::{Backoff, ErrorFilter, Flow, RetryPolicy, Try};
use crate::value::from_json;
use jaq_json::Val;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The error as a value (`$error`), without absent fields.
fn error_value(error: &WorkflowError) -> Val {
    match serde_json::to_value(error) {
        Ok(value) => from_json(value),
        Err(_) => Val::Null,
    }
}

impl<'r> Runner<'r> {
    /// `try`: attempts, retries, and the handler.
    pub(super) async fn try_(
        &self,
        try_: &'r Try,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, Option<Flow>), Stop> {
        let started = Instant::now();
        let mut retries: u64 = 0;
        loop {
            let attempt = match &try_
                .retry
                .as_ref()
                .and_then(|p| p.attempt_duration.as_ref())
            {
                None => self.list(&try_.tasks, input.clone(), frame).await,
                Some(duration) => {
                    let after = self
                        .eval(input, &NULL, descriptor, frame.locals, |args| {
                            duration.eval(input, args)
                        })
                        .map_err(|e| expression_error(instance, e))?;
                    let until = later(after);
                    if until >= frame.limit.until {
                        self.list(&try_.tasks, input.clone(), frame).await
                    } else {
                        let limit = self
                            .shared
                            .limit(until, Owner::Task(Arc::from(instance), after));
                        let inner = Frame {
                            limit: &limit,
                            ..frame
                        };
                        match tokio::time::timeout_at(
                            until,
                            self.list(&try_.tasks, input.clone(), inner),
                        )
                        .await
                        {
                            Ok(result) => result.map_err(|stop| stop.surface(limit.id)),
                            Err(_elapsed) => Err(limit.error(instance).surface(limit.id)),
                        }
                    }
                }
            };
            let error = match attempt {
                Ok((output, ended)) => return Ok((output, ended.then_some(Flow::End))),
                Err(Stop::Fault(error)) => error,
                Err(stop) => return Err(stop),
            };
            let error_val = error_value(&error);
            let mut locals = Vec::with_capacity(frame.locals.len() + 1);
            locals.extend_from_slice(frame.locals);
            locals.push(error_val.clone());
            if !self
                .catches(try_, &error, input, descriptor, &locals)
                .map_err(|e| expression_error(instance, e))?
            {
                return Err(Stop::Fault(error));
            }
            if let Some(policy) = &try_.retry {
                let delay = self
                    .retry_delay(
                        policy, retries, started, input, descriptor, &locals, &error_val,
                    )
                    .map_err(|e| expression_error(instance, e))?;
                if let Some(delay) = delay {
                    if later(delay) < frame.limit.until {
                        tokio::time::sleep(delay).await;
                        retries += 1;
                        continue;
                    }
                }
            }
            return match &try_.handler {
                Some(handler) => {
                    let catch_frame = Frame {
                        locals: &locals,
                        ..frame
                    };
                    let (output, ended) = self.list(handler, input.clone(), catch_frame).await?;
                    Ok((output, ended.then_some(Flow::End)))
                }
                None => Ok((input.clone(), None)),
            };
        }
    }

    /// Whether `try_`'s `catch` catches `error`.
    fn catches(
        &self,
        try_: &Try,
        error: &WorkflowError,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Result<bool, EvalError> {
        if !matches_filter(&try_.filter, error) {
            return Ok(false);
        }
        if let Some(when) = &try_.when {
            if !truthy(&self.eval(input, &NULL, descriptor, locals, |args| {
                when.eval(input.clone(), args)
            })?) {
                return Ok(false);
            }
        }
        if let Some(except_when) = &try_.except_when {
            if truthy(&self.eval(input, &NULL, descriptor, locals, |args| {
                except_when.eval(input.clone(), args)
            })?) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The delay before the next retry, or `None` when the policy allows no more.
    #[allow(clippy::too_many_arguments)]
    fn retry_delay(
        &self,
        policy: &RetryPolicy,
        retries: u64,
        started: Instant,
        input: &Val,
        descriptor: &Val,
        catch_locals: &[Val],
        error: &Val,
    ) -> Result<Option<Duration>, EvalError> {
        if policy.max_attempts.is_some_and(|max| retries >= max) {
            return Ok(None);
        }
        let standalone = [error.clone()];
        let locals: &[Val] = if policy.standalone {
            &standalone
        } else {
            catch_locals
        };
        self.eval(input, &NULL, descriptor, locals, |args| {
            if let Some(when) = &policy.when {
                if !truthy(&when.eval(input.clone(), args)?) {
                    return Ok(None);
                }
            }
            if let Some(except_when) = &policy.except_when {
                if truthy(&except_when.eval(input.clone(), args)?) {
                    return Ok(None);
                }
            }
            if let Some(total) = &policy.total_duration {
                if started.elapsed() >= total.eval(input, args)? {
                    return Ok(None);
                }
            }
            let base = match &policy.delay {
                Some(delay) => delay.eval(input, args)?,
                None => Duration::ZERO,
            };
            let factor: u32 = match policy.backoff {
                Backoff::Constant => 1,
                Backoff::Linear => u32::try_from(retries + 1).unwrap_or(u32::MAX),
                Backoff::Exponential => 1u32 << retries.min(20),
            };
            let mut delay = base.saturating_mul(factor);
            if let Some((from, to)) = &policy.jitter {
                let (from, to) = (from.eval(input, args)?, to.eval(input, args)?);
                if to > from {
                    let span = (to - from).as_nanos().min(u128::from(u64::MAX)) as u64;
                    let random = RandomState::new().build_hasher().finish();
                    delay = delay.saturating_add(from + Duration::from_nanos(random % span.max(1)));
                } else {
                    delay = delay.saturating_add(from);
                }
            }
            Ok(Some(delay))
        })
    }
}

/// Base of the standard error types as the CTK and older documents spell them.
const DSL_ERROR_TYPES: &str = "https://serverlessworkflow.io/dsl/errors/types/";

/// Whether `error` passes `filter` (every field set must be equal).
fn matches_filter(filter: &ErrorFilter, error: &WorkflowError) -> bool {
    let same_type = |expected: &str| {
        expected == error.type_
            || match (standard_kind(expected), standard_kind(&error.type_)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    };
    filter.type_.as_deref().is_none_or(same_type)
        && filter.status.is_none_or(|status| status == error.status)
        && filter
            .instance
            .as_deref()
            .is_none_or(|i| error.instance.as_deref() == Some(i))
        && filter
            .title
            .as_deref()
            .is_none_or(|t| error.title.as_deref() == Some(t))
        && filter
            .detail
            .as_deref()
            .is_none_or(|d| error.detail.as_deref() == Some(d))
}

/// The kind of a standard error type URI, in either spelling.
fn standard_kind(type_: &str) -> Option<&str> {
    type_
        .strip_prefix(DSL_ERROR_TYPES)
        .or_else(|| type_.strip_prefix(&WorkflowError::standard_type("")[..]))
        .filter(|kind| !kind.is_empty() && !kind.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types_match_in_both_spellings() {
        let error = WorkflowError::runtime("/do/0/a", "x".into());
        let filter = |type_: &str| ErrorFilter {
            type_: Some(type_.into()),
            ..ErrorFilter::default()
        };
        assert!(matches_filter(
            &filter("https://serverlessworkflow.io/dsl/errors/types/runtime"),
            &error
        ));
        assert!(matches_filter(
            &filter("https://serverlessworkflow.io/spec/1.0.0/errors/runtime"),
            &error
        ));
        assert!(!matches_filter(
            &filter("https://serverlessworkflow.io/dsl/errors/types/timeout"),
            &error
        ));
        assert!(!matches_filter(
            &filter("https://example.com/errors/runtime"),
            &error
        ));
        let status = ErrorFilter {
            status: Some(500),
            instance: Some("/do/0/a".into()),
            ..ErrorFilter::default()
        };
        assert!(matches_filter(&status, &error));
        assert!(!matches_filter(
            &ErrorFilter {
                status: Some(404),
                ..ErrorFilter::default()
            },
            &error
        ));
    }
}
