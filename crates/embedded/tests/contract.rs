//! The store contract, the answer-cache and rate-limiter contract and the delivery-log
//! contract (`alertresponder_core::fixtures::contract`) on SQLite: in memory,
//! and on a file (WAL, the writer thread's group commit on a real journal).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// A store in memory, fresh for each test.
mod in_memory {
    use alertresponder_embedded::SqliteStore;

    alertresponder_core::contract_tests!(SqliteStore::open_in_memory().unwrap());
    alertresponder_core::cache_contract_tests!(SqliteStore::open_in_memory().unwrap());
    alertresponder_core::delivery_contract_tests!(SqliteStore::open_in_memory().unwrap());
    alertresponder_core::browse_contract_tests!(SqliteStore::open_in_memory().unwrap());
}

/// A store on a file of its own, fresh for each test.
mod on_a_file {
    use alertresponder_embedded::store::Durability;
    use alertresponder_embedded::SqliteStore;
    use tempfile::TempDir;

    /// The store and the directory holding its file (deleted when the test ends).
    struct OnFile {
        store: SqliteStore,
        _dir: TempDir,
    }

    fn on_a_file() -> OnFile {
        let dir = TempDir::new().unwrap();
        let store = SqliteStore::open(&dir.path().join("ar.db"), Durability::Normal).unwrap();
        OnFile { store, _dir: dir }
    }

    alertresponder_core::contract_tests!(on_a_file(), |f| &f.store);
    alertresponder_core::cache_contract_tests!(on_a_file(), |f| &f.store);
    alertresponder_core::delivery_contract_tests!(on_a_file(), |f| &f.store);
    alertresponder_core::browse_contract_tests!(on_a_file(), |f| &f.store);
}
