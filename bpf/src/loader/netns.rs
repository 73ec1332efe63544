//! Running a closure inside another network namespace.

use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use crate::Error;

/// Runs `f` on a scoped thread that has entered the network namespace at `netns`, or on the
/// current thread when `None`. A thread of its own, because `setns` changes the calling thread
/// for good and interface names and TCX attachment resolve in the thread's namespace.
pub(super) fn run_in<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, Error> {
    let Some(path) = netns else {
        return Ok(f());
    };
    let enter_error = |source| Error::EnterNetns {
        path: path.to_path_buf(),
        source,
    };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let file = File::open(path).map_err(enter_error)?;
            setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|errno| enter_error(std::io::Error::from(errno)))?;
            Ok(f())
        });
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
