//! Background priority for the index's own threads. On a relay the inbox and the deliveries must come
//! first: indexing can lag a burst and catch up, a refused or late inbox request cannot be taken back.
//! Linux schedules threads by their nice value, and a thread inherits the value of the thread that
//! starts it, so the writer (whose indexing and merging threads tantivy starts when it is made) is
//! made on a thread that first lowered its own priority, and so are the committer and the callers'
//! pools ([`lower_this_thread`]).

/// Lowers the calling thread's scheduling priority to `nice` (1 to 19; 0 or less leaves it as it
/// is). A thread may always lower its own priority; it cannot raise it back, so only threads made
/// for background work call this. Does nothing where threads have no nice value of their own.
pub fn lower_this_thread(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its arguments; `0` names the calling thread on Linux, where
        // every thread is a task with its own nice value.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.min(19)) };
        if done != 0 {
            tracing::debug!(nice, "could not lower the thread's priority");
        }
    }
}

/// The calling thread's nice value (Linux; 0 elsewhere), for tests and logs.
pub fn this_thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above; errno is reset first since -1 is also a valid answer.
        unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_thread_and_the_threads_it_starts_run_at_lower_priority() {
        let before = this_thread_nice();
        let (own, child) = std::thread::spawn(|| {
            lower_this_thread(7);
            let child = std::thread::spawn(this_thread_nice).join().expect("child");
            (this_thread_nice(), child)
        })
        .join()
        .expect("thread");
        assert_eq!(this_thread_nice(), before, "the caller keeps its priority");
        if cfg!(target_os = "linux") {
            assert_eq!(own, before.max(7));
            assert_eq!(child, own, "inherited");
        }
    }
}
