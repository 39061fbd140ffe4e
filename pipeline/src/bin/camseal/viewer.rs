//! `camseal viewer`.
