//! Unit tests of the pipeline steps on the in-memory adapters.
