//! Getting entries into EventBridge: PutEvents batches, retries with backoff, the deadline.
//!
//! This module knows EventBridge's limits and the retry rules of CONTRACT §7, not the client: one
//! PutEvents call is a [`PutEvents`] (the EventBridge client in production, a script in the tests).
//! Every entry names its own bus and `Source`, so usage events and workflow events go out in
//! the same calls.
//!
//! - Batches: consecutive entries, at most [`MAX_ENTRIES_PER_CALL`] and [`MAX_CALL_BYTES`] per
//!   call by EventBridge's entry-size rule ([`entry_size`]). An entry over the limit on its own
//!   can never be sent and is reported undelivered at once.
//! - Retries: only entries that failed are sent again, and only for retryable failures; after
//!   each round the next waits a full-jitter exponential backoff.
//! - Bounds: every call is cut at [`RetryPolicy::attempt_timeout`] or the deadline, whichever
//!   comes first, and rounds stop at [`RetryPolicy::max_attempts`] or when the next would start
//!   after the deadline. An entry whose call timed out may have been accepted: it is resent as
//!   it was (the same `event_id`), so downstream de-duplicates it.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// EventBridge accepts at most this many entries in one PutEvents call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// EventBridge accepts at most this many bytes of entries (by [`entry_size`]) in one call.
pub const MAX_CALL_BYTES: usize = 256 * 1024;
/// What a `Time` parameter counts for in an entry's size, whatever its value.
const TIME_BYTES: usize = 14;

/// Size of a PutEvents entry by EventBridge's rule ("Calculating Amazon EventBridge PutEvents
/// event entry size"): `Time` 14 bytes when set, plus the UTF-8 bytes of `Source`,
/// `DetailType`, `Detail` and each of `Resources` (this runtime sends none).
pub fn entry_size(source: &str, detail_type: &str, detail: &str, has_time: bool) -> usize {
    let time = if has_time { TIME_BYTES } else { 0 };
    time + source.len() + detail_type.len() + detail.len()
}

/// One entry to deliver: what a [`PutEvents`] needs to send it, and its size.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The event's own id (a usage event's `event_id`, a CloudEvent's `id`; for the record,
    /// EventBridge does not read it).
    pub event_id: &'a str,
    /// `EventBusName` (name or ARN).
    pub bus: &'a str,
    /// `Source`.
    pub source: &'a str,
    /// `DetailType`.
    pub detail_type: &'a str,
    /// `Detail`, serialized JSON.
    pub detail: &'a str,
    /// `Time`; without it EventBridge stamps the time it received the entry.
    pub time: Option<SystemTime>,
    /// Size by [`entry_size`].
    pub size: usize,
}

impl<'a> Entry<'a> {
    /// An entry, its size computed by [`entry_size`].
    pub fn new(
        event_id: &'a str,
        bus: &'a str,
        source: &'a str,
        detail_type: &'a str,
        detail: &'a str,
        time: Option<SystemTime>,
    ) -> Entry<'a> {
        Entry {
            event_id,
            bus,
            source,
            detail_type,
            detail,
            time,
            size: entry_size(source, detail_type, detail, time.is_some()),
        }
    }
}

/// How one entry of an answered call fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// EventBridge accepted it.
    Accepted,
    /// EventBridge refused it.
    Failed {
        /// Why, as EventBridge said it (`ErrorCode: ErrorMessage`).
        error: String,
        /// Whether sending it again can succeed (throttling, internal failure).
        retryable: bool,
    },
}

/// A PutEvents call that got no per-entry answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// What happened, for the fallback line.
    pub error: String,
    /// Whether the call can succeed if made again (throttling, 5xx, connection errors).
    pub retryable: bool,
}

/// Sends one PutEvents call of `entries` and reports each entry's outcome, in order.
pub trait PutEvents {
    /// One call. `Ok` holds one outcome per entry sent, in the order sent.
    fn put_events(
        &self,
        entries: &[Entry<'_>],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, CallError>>;
}

/// How hard delivery tries before it writes entries to the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Rounds of calls at most (the first included).
    pub max_attempts: u32,
    /// The backoff cap of the first retry; it doubles with every further retry.
    pub base_backoff: Duration,
    /// The largest backoff cap.
    pub max_backoff: Duration,
    /// The longest one call may take before it is abandoned (and its entries resent).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// Five rounds, backoff caps 25, 50, 100, 200 ms, each call at most 1 s: EventBridge
    /// answers PutEvents in tens of milliseconds, and every millisecond spent here delays the
    /// response (Lambda freezes the process once it is sent).
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(1000),
            attempt_timeout: Duration::from_millis(1000),
        }
    }
}

impl RetryPolicy {
    /// The backoff cap before retry `retry` (1 = the first retry): `base · 2^(retry-1)`, at
    /// most `max_backoff`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// A full-jitter backoff before retry `retry`: uniformly random in `[0, cap]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=cap))
    }
}

/// An entry that was not delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Its index in the entries handed to [`deliver`].
    pub index: usize,
    /// Why it was not delivered.
    pub error: String,
}

/// What became of the entries handed to [`deliver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries EventBridge accepted.
    pub delivered: usize,
    /// Entries it did not (every other one), in no particular order.
    pub undelivered: Vec<Undelivered>,
    /// PutEvents calls made.
    pub calls: u32,
    /// Rounds of calls made.
    pub rounds: u32,
}

/// An entry still to deliver, with the last reason it was not.
struct Pending {
    index: usize,
    last_error: Option<String>,
}

/// Delivers `entries` through `client` by the rules of this module, finishing by `deadline`.
/// Every entry ends either delivered or in [`Report::undelivered`]; none is sent again once
/// accepted.
pub async fn deliver<C: PutEvents>(
    client: &C,
    entries: &[Entry<'_>],
    deadline: Instant,
    policy: &RetryPolicy,
) -> Report {
    let mut report = Report::default();
    let mut pending = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if entry.size > MAX_CALL_BYTES {
            report.undelivered.push(Undelivered {
                index,
                error: format!(
                    "entry is {} bytes, over EventBridge's {MAX_CALL_BYTES}-byte PutEvents limit: it cannot be sent",
                    entry.size
                ),
            });
        } else {
            pending.push(Pending {
                index,
                last_error: None,
            });
        }
    }

    while !pending.is_empty() {
        report.rounds += 1;
        let mut retry = Vec::new();
        for batch in batches(std::mem::take(&mut pending), entries) {
            let now = Instant::now();
            if now >= deadline {
                let why = format!(
                    "the invocation deadline passed before attempt {}",
                    report.rounds
                );
                report
                    .undelivered
                    .extend(batch.into_iter().map(|p| p.give_up(&why)));
                continue;
            }
            let limit = policy.attempt_timeout.min(deadline - now);
            let sent: Vec<Entry<'_>> = batch.iter().map(|p| entries[p.index]).collect();
            report.calls += 1;
            let answer = tokio::time::timeout(limit, client.put_events(&sent)).await;
            match answer {
                Err(_elapsed) => {
                    let error = format!(
                        "PutEvents got no answer within {} ms (outcome unknown: resent with the same event_id)",
                        limit.as_millis()
                    );
                    retry.extend(batch.into_iter().map(|p| p.failed(&error)));
                }
                Ok(Err(call)) if call.retryable => {
                    retry.extend(batch.into_iter().map(|p| p.failed(&call.error)));
                }
                Ok(Err(call)) => {
                    report
                        .undelivered
                        .extend(batch.into_iter().map(|p| Undelivered {
                            index: p.index,
                            error: format!("{} (not retryable)", call.error),
                        }));
                }
                Ok(Ok(outcomes)) if outcomes.len() != batch.len() => {
                    let error = format!(
                        "PutEvents answered {} entries for the {} sent (outcome unknown: resent with the same event_id)",
                        outcomes.len(),
                        batch.len()
                    );
                    retry.extend(batch.into_iter().map(|p| p.failed(&error)));
                }
                Ok(Ok(outcomes)) => {
                    for (p, outcome) in batch.into_iter().zip(outcomes) {
                        match outcome {
                            EntryOutcome::Accepted => report.delivered += 1,
                            EntryOutcome::Failed {
                                error,
                                retryable: true,
                            } => retry.push(p.failed(&error)),
                            EntryOutcome::Failed {
                                error,
                                retryable: false,
                            } => report.undelivered.push(Undelivered {
                                index: p.index,
                                error: format!("{error} (not retryable)"),
                            }),
                        }
                    }
                }
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
        let give_up = if report.rounds >= policy.max_attempts {
            Some(format!("gave up after {} attempts", report.rounds))
        } else {
            let pause = policy.backoff(report.rounds);
            if Instant::now() + pause >= deadline {
                Some(format!(
                    "the invocation deadline left no time for attempt {}",
                    report.rounds + 1
                ))
            } else {
                tokio::time::sleep(pause).await;
                None
            }
        };
        if let Some(why) = give_up {
            report
                .undelivered
                .extend(pending.drain(..).map(|p| p.give_up(&why)));
        }
    }
    report
}

impl Pending {
    /// The entry after a retryable failure.
    fn failed(self, error: &str) -> Pending {
        Pending {
            index: self.index,
            last_error: Some(error.to_owned()),
        }
    }

    /// The entry, undelivered: its last failure and why delivery stopped.
    fn give_up(self, why: &str) -> Undelivered {
        Undelivered {
            index: self.index,
            error: match self.last_error {
                Some(last) => format!("{last}; {why}"),
                None => why.to_owned(),
            },
        }
    }
}

/// Splits pending entries, in order, into PutEvents calls of at most [`MAX_ENTRIES_PER_CALL`]
/// entries and [`MAX_CALL_BYTES`] bytes. Every pending entry fits a call on its own.
fn batches(pending: Vec<Pending>, entries: &[Entry<'_>]) -> Vec<Vec<Pending>> {
    let sizes: Vec<usize> = pending.iter().map(|p| entries[p.index].size).collect();
    let mut rest = pending.into_iter();
    batch_lengths(&sizes)
        .into_iter()
        .map(|len| rest.by_ref().take(len).collect())
        .collect()
}

/// Lengths of consecutive batches of entries of the given sizes: a new batch starts when the
/// current one holds [`MAX_ENTRIES_PER_CALL`] entries or the next entry would take it over
/// [`MAX_CALL_BYTES`]. Greedy, order-preserving.
pub fn batch_lengths(sizes: &[usize]) -> Vec<usize> {
    let mut lengths = Vec::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    for &size in sizes {
        if count > 0 && (count == MAX_ENTRIES_PER_CALL || bytes + size > MAX_CALL_BYTES) {
            lengths.push(count);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes += size;
    }
    if count > 0 {
        lengths.push(count);
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// What the scripted EventBridge does with one call.
    #[derive(Clone)]
    enum Step {
        /// Accept every entry.
        Accept,
        /// Fail the whole call.
        Call(CallError),
        /// Answer per entry by event id: listed ids fail with (code, retryable), others pass.
        PerEntry(Vec<(&'static str, &'static str, bool)>),
        /// Never answer.
        Hang,
    }

    /// A scripted PutEvents: one step per call, then `Accept`. Records every call's event ids
    /// and which entries it accepted.
    struct Script {
        steps: RefCell<VecDeque<Step>>,
        calls: RefCell<Vec<Vec<String>>>,
        /// Accepted event ids, with the index of the call that accepted each.
        accepted: RefCell<Vec<(usize, String)>>,
    }

    impl Script {
        fn new(steps: Vec<Step>) -> Script {
            Script {
                steps: RefCell::new(steps.into()),
                calls: RefCell::new(Vec::new()),
                accepted: RefCell::new(Vec::new()),
            }
        }
    }

    impl PutEvents for Script {
        async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<EntryOutcome>, CallError> {
            assert!(
                entries.len() <= MAX_ENTRIES_PER_CALL,
                "{} entries",
                entries.len()
            );
            let bytes: usize = entries.iter().map(|e| e.size).sum();
            assert!(bytes <= MAX_CALL_BYTES, "{bytes} bytes");
            let ids: Vec<String> = entries.iter().map(|e| e.event_id.to_owned()).collect();
            let call = self.calls.borrow().len();
            self.calls.borrow_mut().push(ids.clone());
            let step = self.steps.borrow_mut().pop_front().unwrap_or(Step::Accept);
            match step {
                Step::Accept => {
                    self.accepted
                        .borrow_mut()
                        .extend(ids.into_iter().map(|id| (call, id)));
                    Ok(vec![EntryOutcome::Accepted; entries.len()])
                }
                Step::Call(e) => Err(e),
                Step::PerEntry(failures) => Ok(ids
                    .into_iter()
                    .map(|id| match failures.iter().find(|f| f.0 == id) {
                        Some(&(_, code, retryable)) => EntryOutcome::Failed {
                            error: format!("{code}: scripted"),
                            retryable,
                        },
                        None => {
                            self.accepted.borrow_mut().push((call, id));
                            EntryOutcome::Accepted
                        }
                    })
                    .collect()),
                Step::Hang => std::future::pending().await,
            }
        }
    }

    struct Events {
        ids: Vec<String>,
        details: Vec<String>,
    }

    impl Events {
        fn new(n: usize, detail_bytes: usize) -> Events {
            Events {
                ids: (0..n).map(|i| format!("e{i}")).collect(),
                details: (0..n).map(|_| "x".repeat(detail_bytes)).collect(),
            }
        }

        fn entries(&self) -> Vec<Entry<'_>> {
            self.ids
                .iter()
                .zip(&self.details)
                .map(|(id, detail)| {
                    Entry::new(
                        id,
                        "bus",
                        "mozaiks.runtime",
                        "mozaiks.usage.llm",
                        detail,
                        Some(SystemTime::UNIX_EPOCH),
                    )
                })
                .collect()
        }
    }

    fn deadline_in(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// [`deliver`] with the default policy and a deadline `ms` from now.
    async fn deliver_within<C: PutEvents>(client: &C, entries: &[Entry<'_>], ms: u64) -> Report {
        deliver(client, entries, deadline_in(ms), &RetryPolicy::default()).await
    }

    /// The invariants of every case: each entry ends exactly once, delivered or undelivered;
    /// no entry is sent twice in one call, nor ever again once a call accepted it.
    fn check_invariants(script: &Script, entries: &[Entry<'_>], report: &Report) {
        let accepted = script.accepted.borrow();
        let calls = script.calls.borrow();
        assert_eq!(report.delivered, accepted.len());
        assert_eq!(report.calls as usize, calls.len());
        assert_eq!(
            report.delivered + report.undelivered.len(),
            entries.len(),
            "{report:?}"
        );
        let mut ended: Vec<&str> = accepted.iter().map(|(_, id)| id.as_str()).collect();
        ended.extend(report.undelivered.iter().map(|u| entries[u.index].event_id));
        ended.sort_unstable();
        let mut all: Vec<&str> = entries.iter().map(|e| e.event_id).collect();
        all.sort_unstable();
        assert_eq!(ended, all, "every entry ends exactly once");
        for call in calls.iter() {
            let mut ids: Vec<&String> = call.iter().collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(
                ids.len(),
                call.len(),
                "an entry twice in one call: {call:?}"
            );
        }
        for (accepted_in, id) in accepted.iter() {
            let resent = calls[accepted_in + 1..].iter().any(|c| c.contains(id));
            assert!(
                !resent,
                "{id} was sent again after call {accepted_in} accepted it"
            );
        }
    }

    #[test]
    fn entry_size_follows_eventbridges_rule() {
        assert_eq!(entry_size("src", "type", "{}", true), 14 + 3 + 4 + 2);
        assert_eq!(entry_size("src", "type", "{}", false), 3 + 4 + 2);
        // UTF-8 bytes, not characters.
        assert_eq!(entry_size("s", "t", "\"é\"", false), 1 + 1 + 4);
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kib() {
        assert_eq!(batch_lengths(&[]), Vec::<usize>::new());
        assert_eq!(batch_lengths(&[100; 25]), [10, 10, 5]);
        assert_eq!(batch_lengths(&[100; 10]), [10]);
        // 100 KiB entries: two fit (200 KiB), a third would exceed 256 KiB.
        assert_eq!(batch_lengths(&[100 * 1024; 5]), [2, 2, 1]);
        // Exactly the limit fits; one byte more does not.
        assert_eq!(batch_lengths(&[MAX_CALL_BYTES]), [1]);
        assert_eq!(batch_lengths(&[MAX_CALL_BYTES - 10, 10, 1]), [2, 1]);
        assert_eq!(batch_lengths(&[1, MAX_CALL_BYTES]), [1, 1]);
    }

    proptest::proptest! {
        #[test]
        fn batches_keep_order_and_limits(sizes in proptest::collection::vec(1usize..=MAX_CALL_BYTES, 0..40)) {
            let lengths = batch_lengths(&sizes);
            proptest::prop_assert_eq!(lengths.iter().sum::<usize>(), sizes.len());
            let mut at = 0;
            for (n, len) in lengths.iter().enumerate() {
                let batch = &sizes[at..at + len];
                proptest::prop_assert!(!batch.is_empty() && batch.len() <= MAX_ENTRIES_PER_CALL);
                proptest::prop_assert!(batch.iter().sum::<usize>() <= MAX_CALL_BYTES);
                // Greedy: the next entry would not have fitted this batch.
                if let Some(&next) = sizes.get(at + len) {
                    proptest::prop_assert!(
                        batch.len() == MAX_ENTRIES_PER_CALL
                            || batch.iter().sum::<usize>() + next > MAX_CALL_BYTES,
                        "batch {} could have taken the next entry", n
                    );
                }
                at += len;
            }
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_cap(1), Duration::from_millis(25));
        assert_eq!(policy.backoff_cap(2), Duration::from_millis(50));
        assert_eq!(policy.backoff_cap(4), Duration::from_millis(200));
        assert_eq!(policy.backoff_cap(10), Duration::from_millis(1000));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_millis(1000));
        let draws: Vec<Duration> = (0..200).map(|_| policy.backoff(3)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(100)));
        // Jitter spreads the draws over the range (not all at the cap, not all at zero).
        assert!(draws.iter().any(|d| *d < Duration::from_millis(50)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(50)));
    }

    #[tokio::test(start_paused = true)]
    async fn everything_accepted_in_one_call() {
        let events = Events::new(3, 100);
        let entries = events.entries();
        let script = Script::new(vec![]);
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.delivered, 3);
        assert_eq!(report.calls, 1);
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn more_than_ten_entries_go_in_several_calls_in_order() {
        let events = Events::new(23, 100);
        let entries = events.entries();
        let script = Script::new(vec![]);
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.delivered, 23);
        let calls = script.calls.borrow().clone();
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 3]);
        assert_eq!(calls.concat(), events.ids);
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn large_entries_are_batched_by_bytes_and_an_oversized_one_is_never_sent() {
        let mut events = Events::new(4, 120 * 1024);
        events.details[2] = "y".repeat(MAX_CALL_BYTES);
        let entries = events.entries();
        let script = Script::new(vec![]);
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.delivered, 3);
        assert_eq!(report.undelivered.len(), 1);
        assert_eq!(report.undelivered[0].index, 2);
        assert!(
            report.undelivered[0].error.contains("cannot be sent"),
            "{:?}",
            report.undelivered
        );
        let calls = script.calls.borrow().clone();
        assert_eq!(calls, [vec!["e0", "e1"], vec!["e3"]]);
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn only_retryable_failed_entries_are_resent() {
        let events = Events::new(5, 100);
        let entries = events.entries();
        let script = Script::new(vec![
            Step::PerEntry(vec![
                ("e1", "ThrottlingException", true),
                ("e2", "MalformedDetail", false),
                ("e4", "InternalFailure", true),
            ]),
            Step::PerEntry(vec![("e4", "InternalFailure", true)]),
        ]);
        let report = deliver_within(&script, &entries, 5000).await;
        let calls = script.calls.borrow().clone();
        assert_eq!(
            calls,
            [
                vec!["e0", "e1", "e2", "e3", "e4"],
                vec!["e1", "e4"],
                vec!["e4"]
            ]
        );
        assert_eq!(report.delivered, 4);
        assert_eq!(report.undelivered.len(), 1);
        assert_eq!(report.undelivered[0].index, 2);
        assert!(report.undelivered[0].error.starts_with("MalformedDetail"));
        assert!(report.undelivered[0].error.contains("not retryable"));
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_call_is_retried_whole_after_a_backoff() {
        let events = Events::new(2, 100);
        let entries = events.entries();
        let throttled = CallError {
            error: "ThrottlingException: Rate exceeded (HTTP 400)".into(),
            retryable: true,
        };
        let script = Script::new(vec![Step::Call(throttled.clone()), Step::Call(throttled)]);
        let started = Instant::now();
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.delivered, 2);
        assert_eq!(report.calls, 3);
        assert_eq!(report.rounds, 3);
        // Two backoffs, each at most its cap (25 ms, then 50 ms).
        assert!(started.elapsed() <= Duration::from_millis(75));
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_call_error_is_not_retried() {
        let events = Events::new(3, 100);
        let entries = events.entries();
        let script = Script::new(vec![Step::Call(CallError {
            error: "AccessDeniedException: no (HTTP 400)".into(),
            retryable: false,
        })]);
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.calls, 1);
        assert_eq!(report.delivered, 0);
        assert!(report
            .undelivered
            .iter()
            .all(|u| u.error == "AccessDeniedException: no (HTTP 400) (not retryable)"));
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_failures_stop_after_max_attempts() {
        let events = Events::new(2, 100);
        let entries = events.entries();
        let down = CallError {
            error: "InternalException: down (HTTP 500)".into(),
            retryable: true,
        };
        let script = Script::new(vec![Step::Call(down); 10]);
        let policy = RetryPolicy::default();
        let report = deliver(&script, &entries, deadline_in(60_000), &policy).await;
        assert_eq!(report.calls, policy.max_attempts);
        assert_eq!(report.undelivered.len(), 2);
        assert!(report
            .undelivered
            .iter()
            .all(|u| u.error == "InternalException: down (HTTP 500); gave up after 5 attempts"));
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_is_cut_and_resent_with_the_same_event_ids_within_the_deadline() {
        let events = Events::new(2, 100);
        let entries = events.entries();
        let script = Script::new(vec![Step::Hang, Step::Hang, Step::Hang]);
        let started = Instant::now();
        let deadline = deadline_in(1500);
        let report = deliver(&script, &entries, deadline, &RetryPolicy::default()).await;
        assert!(Instant::now() <= deadline, "delivery overran the deadline");
        // 1 s attempt timeout, then the rest of the deadline for the second call.
        assert!(started.elapsed() >= Duration::from_millis(1000));
        let calls = script.calls.borrow().clone();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], calls[1], "the resend carries the same event ids");
        assert_eq!(report.undelivered.len(), 2);
        assert!(
            report.undelivered[0].error.contains("outcome unknown"),
            "{:?}",
            report.undelivered
        );
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hang_then_success_delivers_once() {
        let events = Events::new(1, 100);
        let entries = events.entries();
        let script = Script::new(vec![Step::Hang]);
        let report = deliver_within(&script, &entries, 5000).await;
        assert_eq!(report.delivered, 1);
        assert_eq!(script.calls.borrow().len(), 2);
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_sends_nothing_and_reports_everything() {
        let events = Events::new(3, 100);
        let entries = events.entries();
        let script = Script::new(vec![]);
        let report = deliver(&script, &entries, Instant::now(), &RetryPolicy::default()).await;
        assert_eq!(report.calls, 0);
        assert_eq!(report.undelivered.len(), 3);
        assert!(report
            .undelivered
            .iter()
            .all(|u| u.error == "the invocation deadline passed before attempt 1"));
        check_invariants(&script, &entries, &report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_answer_is_resent_whole() {
        struct Short(RefCell<u32>, RefCell<Vec<Vec<String>>>);
        impl PutEvents for Short {
            async fn put_events(
                &self,
                entries: &[Entry<'_>],
            ) -> Result<Vec<EntryOutcome>, CallError> {
                self.1
                    .borrow_mut()
                    .push(entries.iter().map(|e| e.event_id.to_owned()).collect());
                *self.0.borrow_mut() += 1;
                let n = if *self.0.borrow() == 1 {
                    1
                } else {
                    entries.len()
                };
                Ok(vec![EntryOutcome::Accepted; n])
            }
        }
        let events = Events::new(2, 100);
        let entries = events.entries();
        let short = Short(RefCell::new(0), RefCell::new(Vec::new()));
        let report = deliver_within(&short, &entries, 5000).await;
        assert_eq!(report.delivered, 2);
        assert_eq!(short.1.borrow().len(), 2);
        assert_eq!(short.1.borrow()[0], short.1.borrow()[1]);
    }
}
