//! `camseal run`.
