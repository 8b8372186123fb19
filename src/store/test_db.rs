//! Where a store test's data lives — a SQLite file or a PostgreSQL database in the tests' own
//! throwaway cluster — so that the store's test suite runs, unchanged, on both backends.

#[path = "../../tests/e2e/support/postgres.rs"]
mod cluster;

use crate::store::Store;

/// A test's database, opened as often as the test likes (opening again is a restart).
pub enum TestDb {
    /// A SQLite file in a directory removed with the value.
    Sqlite(tempfile::TempDir),
    /// A fresh database of the tests' PostgreSQL cluster.
    Postgres(String),
}

impl TestDb {
    /// A new SQLite database.
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// A new, empty PostgreSQL database (the cluster starts on first use).
    pub fn postgres() -> TestDb {
        TestDb::Postgres(cluster::cluster().new_database())
    }

    /// The store on this database.
    pub async fn open(&self) -> Store {
        match self {
            TestDb::Sqlite(dir) => Store::open(&dir.path().join("t.db")).expect("open SQLite"),
            TestDb::Postgres(url) => Store::connect(url).await.expect("connect to PostgreSQL"),
        }
    }
}

/// Runs each named test, an `async fn(TestDb)` of the module it is invoked in, on SQLite and on
/// PostgreSQL (tests `on_sqlite::name` and `on_postgres::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::store::test_db::TestDb::sqlite()).await
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::store::test_db::TestDb::postgres()).await
                }
            )+
        }
    };
}
