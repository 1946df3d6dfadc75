//! Where a request's time goes: the services mark the end of each phase of a request (the
//! identity check, the event certificate, the document work, the commit), and the HTTP layer
//! logs the phases with the request once it is answered. A latency seen by a user can then be
//! taken apart from the instances' logs alone (docs/operations.md), without a profiler on a
//! production machine. Outside a request (a test, the scheduler) marking does nothing.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Instant;

tokio::task_local! {
    static PHASES: RefCell<Phases>;
}

/// The phases of one request, in the order they ended.
pub struct Phases {
    last: Instant,
    spans: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            last: Instant::now(),
            spans: Vec::new(),
        }
    }

    /// `name=ms` pairs in order, the time after the last mark as `rest`.
    fn render(&self) -> String {
        let mut out = String::new();
        for (name, ms) in &self.spans {
            let _ = write!(out, "{name}={ms:.1} ");
        }
        let _ = write!(
            out,
            "rest={:.1}",
            self.last.elapsed().as_secs_f64() * 1000.0
        );
        out
    }
}

/// Runs `f` as one request whose phases are recorded; returns its output and the phases as
/// text (`None` when nothing was marked).
pub async fn measure<F: Future>(f: F) -> (F::Output, Option<String>) {
    PHASES
        .scope(RefCell::new(Phases::new()), async {
            let out = f.await;
            let text = PHASES
                .try_with(|p| {
                    let p = p.borrow();
                    (!p.spans.is_empty()).then(|| p.render())
                })
                .ok()
                .flatten();
            (out, text)
        })
        .await
}

/// Ends the current phase under `name` (the time since the previous mark or the start).
pub fn mark(name: &'static str) {
    let _ = PHASES.try_with(|p| {
        let mut p = p.borrow_mut();
        let now = Instant::now();
        let ms = now.duration_since(p.last).as_secs_f64() * 1000.0;
        p.last = now;
        // A phase marked twice (a loop) adds up under one name.
        match p.spans.iter_mut().find(|(n, _)| *n == name) {
            Some(s) => s.1 += ms,
            None => p.spans.push((name, ms)),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_are_recorded_in_a_request_and_ignored_outside() {
        mark("outside");
        let ((), text) = measure(async {
            mark("first");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            mark("second");
            mark("first");
        })
        .await;
        let text = text.expect("phases");
        let names: Vec<&str> = text
            .split(' ')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        assert_eq!(names, ["first", "second", "rest"]);
        let second: f64 = text.split(' ').nth(1).unwrap()[7..].parse().unwrap();
        assert!(second >= 5.0, "{text}");
        let ((), none) = measure(async {}).await;
        assert!(none.is_none());
    }
}
