//! The indexer's own threads: where its calls into the index run (building documents, parsing HTML,
//! handing them to the writer), at background priority ([`plaza_index::priority`]), so that on a busy
//! machine the inbox and the deliveries get the cores first and the index catches up after a burst.
//! A pool of its own rather than the runtime's blocking threads: a thread's priority cannot be raised
//! again, and the searches people wait for share those.

use std::sync::{Arc, Mutex, mpsc};

use crate::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of background threads taking jobs in order.
pub struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    /// Starts `threads` threads (at least one) at nice value `nice`.
    pub fn start(threads: usize, nice: i32) -> Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("plaza-indexer-{n}"))
                .spawn(move || {
                    plaza_index::priority::lower_this_thread(nice);
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| Error::Index(format!("starting the indexer's threads: {e}")))?;
        }
        Ok(Pool {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `f` on one of the pool's threads and waits for its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .map_err(|_| Error::Index("the indexer's pool is broken".into()))?
            .send(job)
            .map_err(|_| Error::Index("the indexer's threads are gone".into()))?;
        rx.await
            .map_err(|_| Error::Index("an index job ended without an answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_background_threads_and_answer() {
        let pool = Pool::start(1, 5).expect("pool");
        let (answer, nice) = pool
            .run(|| (6 * 7, plaza_index::priority::this_thread_nice()))
            .await
            .expect("ran");
        assert_eq!(answer, 42);
        if cfg!(target_os = "linux") {
            assert!(nice >= 5, "{nice}");
        }
        assert!(
            plaza_index::priority::this_thread_nice() < nice || !cfg!(target_os = "linux"),
            "the caller's thread is untouched"
        );
    }
}
