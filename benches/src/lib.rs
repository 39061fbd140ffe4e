//! Host crate for camseal's criterion benches (`benches/`); it has no code of its own.
//!
//! Run `cargo bench -p camseal-benches` (add `-- --quick` for a fast pass). The benches build
//! with the workspace `bench` profile: release settings, generic target, runtime dispatch.
