use tokio::time::{Duration, Instant};

use super::{Cause, Causes, since};

fn at(start: Instant, millis: u64) -> Cause {
    Cause {
        span: tracing::Span::none(),
        since: start + Duration::from_millis(millis),
    }
}

#[test]
fn take_returns_the_range_and_forgets_everything_up_to_it() {
    let start = Instant::now();
    let causes = Causes::default();
    causes.record(3, at(start, 3));
    causes.record(5, at(start, 5));
    causes.record(9, at(start, 9));
    let taken = causes.take(3, 5);
    assert_eq!(since(&taken), Some(start + Duration::from_millis(5)));
    assert_eq!(taken.len(), 1, "3 is at or before `after`");
    assert!(
        causes.take(0, 8).is_empty(),
        "3 was forgotten with the first take"
    );
    assert_eq!(causes.take(8, 9).len(), 1);
    assert!(causes.take(0, u64::MAX).is_empty());
}

#[test]
fn unread_causes_are_bounded() {
    let start = Instant::now();
    let causes = Causes::default();
    for revision in 0..2000 {
        causes.record(revision, at(start, revision));
    }
    let all = causes.take(0, u64::MAX);
    assert_eq!(all.len(), super::MAX_CAUSES);
    assert_eq!(
        since(&all),
        Some(start + Duration::from_millis(2000 - 1024)),
        "the oldest were dropped"
    );
}
