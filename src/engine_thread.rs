//! The thread workflows run on, apart from the thread that answers Lambda.
//!
//! A jq expression is plain computation: once it runs, nothing can interrupt it
//! (`reduce range(1e9) as $i (0; . + 1)` takes seconds), and a deadline timer on the same
//! thread would only fire after it. So runs happen on their own thread (its own
//! single-threaded Tokio runtime, and a large stack for deep recursion, see
//! [`stack_size`]), while the Lambda thread waits for the result no longer than the run's
//! deadline plus [`GRACE`]. A run that has not answered by then is busy computing: the Lambda
//! thread answers for it (a `timeout` fault with what [`Progress`] says it did), emits its
//! usage, and the process ends once the answer is sent (see `main.rs`), so that Lambda starts
//! a fresh one instead of a sandbox whose engine thread is still spinning.
//!
//! [`Progress`]: crate::workflow::Progress

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// How long past a run's deadline the Lambda thread waits for it: a run that is not computing
/// answers at its deadline by itself (the engine's own timer); only one that is gets cut.
pub const GRACE: Duration = Duration::from_millis(50);

/// The engine thread's stack when Lambda does not say how much memory the function has.
pub const DEFAULT_STACK: usize = 256 << 20;
/// The smallest engine thread stack.
pub const MIN_STACK: usize = 16 << 20;

/// The engine thread's stack: a quarter of the function's memory
/// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB), between 16 and 256 MiB; 256 MiB without it. Only
/// the pages a run touches are resident; jq recursion stops with an error (the stack guard)
/// before it reaches the end, at about 5 KiB of stack per level (a recursion of 10,000 levels
/// needs about 50 MiB).
pub fn stack_size(function_memory_mb: Option<&str>) -> usize {
    match function_memory_mb.and_then(|mb| mb.trim().parse::<usize>().ok()) {
        Some(mb) => (mb.saturating_mul(1 << 20) / 4).clamp(MIN_STACK, DEFAULT_STACK),
        None => DEFAULT_STACK,
    }
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The engine thread: takes runs, one at a time, in the order given.
pub struct EngineThread {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Why a run's result did not come back in time.
#[derive(Debug, PartialEq, Eq)]
pub enum Late {
    /// It was still computing at its deadline plus [`GRACE`].
    Busy,
    /// The engine thread is gone (it cannot exit; kept for completeness of the answer).
    Gone,
}

impl EngineThread {
    /// Starts the thread with a stack of `stack` bytes.
    pub fn start(stack: usize) -> std::io::Result<EngineThread> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("mozaiks-engine".into())
            .stack_size(stack)
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job.await;
                    }
                })
            })?;
        Ok(EngineThread { jobs })
    }

    /// Runs `run` on the engine thread and waits for its result until `until`.
    pub async fn run<T: Send + 'static>(
        &self,
        run: impl Future<Output = T> + Send + 'static,
        until: tokio::time::Instant,
    ) -> Result<T, Late> {
        let (answer, result) = oneshot::channel();
        let job: Job = Box::pin(async move {
            let _ = answer.send(run.await);
        });
        if self.jobs.send(job).is_err() {
            return Err(Late::Gone);
        }
        match tokio::time::timeout_at(until, result).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(Late::Gone),
            Err(_) => Err(Late::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_follows_the_function_memory() {
        assert_eq!(stack_size(None), DEFAULT_STACK);
        assert_eq!(stack_size(Some("128")), 32 << 20);
        assert_eq!(stack_size(Some("10240")), DEFAULT_STACK);
        assert_eq!(stack_size(Some("32")), MIN_STACK);
        assert_eq!(stack_size(Some("lots")), DEFAULT_STACK);
    }

    #[tokio::test]
    async fn results_come_back_and_a_busy_run_is_left_behind() {
        let engine = EngineThread::start(MIN_STACK).unwrap();
        let later = || tokio::time::Instant::now() + Duration::from_secs(10);
        assert_eq!(engine.run(async { 6 * 7 }, later()).await, Ok(42));
        // A computation that never yields: the caller stops waiting at `until`.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let busy = engine
            .run(
                async move {
                    let _ = released.recv();
                },
                tokio::time::Instant::now() + Duration::from_millis(100),
            )
            .await;
        assert_eq!(busy, Err(Late::Busy));
        assert!(started.elapsed() < Duration::from_secs(5));
        release.send(()).unwrap();
        // Jobs after it run once it is done.
        assert_eq!(engine.run(async { "next" }, later()).await, Ok("next"));
    }
}
